"""Git's unified diff, parsed (apps.repos.diffs): what the line check and the page read."""

from __future__ import annotations

from apps.repos.diffs import file_in, parse_diff

DIFF = r"""diff --git a/calc.py b/calc.py
index 1111111..2222222 100644
--- a/calc.py
+++ b/calc.py
@@ -1,4 +1,4 @@ def f():
 a = 1
-b = 2
+b = 3
 c = 4
 d = 5
@@ -10 +10,2 @@
-x
\ No newline at end of file
+x
+y
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/old name.md b/docs/new name.md
similarity index 90%
rename from old name.md
rename to docs/new name.md
diff --git a/logo.png b/logo.png
Binary files a/logo.png and b/logo.png differ
diff --git "a/caf\303\251.txt" "b/caf\303\251.txt"
--- "a/caf\303\251.txt"
+++ "b/caf\303\251.txt"
@@ -1 +1 @@
-a
+b
"""


def test_files_statuses_and_counts():
    files = parse_diff(DIFF)

    assert [(f.path, f.status, f.additions, f.deletions) for f in files] == [
        ("calc.py", "modified", 3, 2),
        ("new.txt", "added", 1, 0),
        ("gone.txt", "deleted", 0, 1),
        ("docs/new name.md", "renamed", 0, 0),
        ("logo.png", "modified", 0, 0),
        ("café.txt", "modified", 1, 1),
    ]
    assert files[3].old_path == "old name.md"
    assert files[4].binary


def test_lines_are_numbered_on_both_sides():
    calc = file_in(parse_diff(DIFF), "calc.py")

    assert calc is not None
    assert calc.lines_on("new") == {1, 2, 3, 4, 10, 11}
    assert calc.lines_on("old") == {1, 2, 3, 4, 10}
    first = calc.hunks[0].lines
    assert [(line.kind, line.old, line.new) for line in first] == [
        ("ctx", 1, 1), ("del", 2, None), ("add", None, 2), ("ctx", 3, 3), ("ctx", 4, 4),
    ]  # fmt: skip


def test_a_deleted_file_has_only_old_lines_and_keeps_its_name():
    gone = file_in(parse_diff(DIFF), "gone.txt")

    assert gone is not None and gone.lines_on("new") == set() and gone.lines_on("old") == {1}
