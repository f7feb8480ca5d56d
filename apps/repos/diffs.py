"""Git's unified diff, parsed: files, hunks and numbered lines.

The review half reads it for two things: which lines a comment may be put on (a line of the
diff: added, removed or context, on its side) and what the review page shows. Pure Python, one
pass over the text; `git diff` (apps.repos.git) makes the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
            "r": "\r", "v": "\v"}  # fmt: skip


@dataclass(slots=True)
class DiffLine:
    kind: str  # "add", "del" or "ctx"
    old: int | None  # its number in the old file (None for an added line)
    new: int | None  # its number in the new file (None for a removed line)
    text: str


@dataclass(slots=True)
class Hunk:
    header: str
    old_start: int
    new_start: int
    lines: list[DiffLine] = field(default_factory=list)


@dataclass(slots=True)
class FileDiff:
    old_path: str
    new_path: str
    status: str = "modified"  # added, modified, deleted, renamed
    binary: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    additions: int = 0
    deletions: int = 0

    @property
    def path(self) -> str:
        """The file's name in the version (its old name when the version deletes it)."""
        return self.old_path if self.status == "deleted" else self.new_path

    def lines_on(self, side: str) -> set[int]:
        """The line numbers of `side` ("new" or "old") that the diff shows."""
        numbers: set[int] = set()
        for hunk in self.hunks:
            for line in hunk.lines:
                number = line.new if side == "new" else line.old
                if number is not None:
                    numbers.add(number)
        return numbers


def _unquote(path: str) -> str:
    """A path as git writes it: C-quoted when it has unusual characters (core.quotePath)."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    raw = path[1:-1]
    out = bytearray()
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt in "01234567" and i + 3 < len(raw) + 1:
                out.append(int(raw[i + 1 : i + 4], 8))
                i += 4
                continue
            out.extend(_ESCAPES.get(nxt, nxt).encode())
            i += 2
            continue
        out.extend(char.encode())
        i += 1
    return out.decode("utf-8", errors="replace")


def _strip_prefix(path: str) -> str:
    path = _unquote(path.split("\t", 1)[0])
    return path[2:] if path[:2] in ("a/", "b/") else path


def _paths_from_git_line(line: str) -> tuple[str, str]:
    """`diff --git a/x b/x`: both names (only trusted when ---/+++ lines do not follow)."""
    rest = line[len("diff --git ") :]
    if rest.startswith('"'):
        end = rest.index('"', 1) + 1
        while rest[end - 2] == "\\":  # an escaped quote inside the name
            end = rest.index('"', end) + 1
        return _strip_prefix(rest[:end]), _strip_prefix(rest[end + 1 :])
    half = len(rest) // 2  # "a/<p> b/<p>": the same name twice when it is not renamed
    return _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])


def parse_diff(text: str) -> list[FileDiff]:
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_left = new_left = 0
    old_no = new_no = 0
    for line in text.split("\n"):
        if hunk is not None and current is not None and (old_left > 0 or new_left > 0):
            tag = line[:1]
            if tag == "+":
                hunk.lines.append(DiffLine("add", None, new_no, line[1:]))
                new_no += 1
                new_left -= 1
                current.additions += 1
                continue
            if tag == "-":
                hunk.lines.append(DiffLine("del", old_no, None, line[1:]))
                old_no += 1
                old_left -= 1
                current.deletions += 1
                continue
            if tag == " " or line == "":
                hunk.lines.append(DiffLine("ctx", old_no, new_no, line[1:]))
                old_no += 1
                new_no += 1
                old_left -= 1
                new_left -= 1
                continue
            if tag == "\\":  # "\ No newline at end of file"
                continue
            hunk = None  # a short hunk: fall through to the headers
        if line.startswith("diff --git "):
            old_path, new_path = _paths_from_git_line(line)
            current = FileDiff(old_path=old_path, new_path=new_path)
            files.append(current)
            hunk = None
            continue
        if current is None:
            continue
        if line.startswith("@@"):
            match = HUNK_RE.match(line)
            if match is None:
                continue
            old_start, old_count, new_start, new_count, _ = match.groups()
            hunk = Hunk(header=line, old_start=int(old_start), new_start=int(new_start))
            current.hunks.append(hunk)
            old_no, new_no = int(old_start), int(new_start)
            old_left = 1 if old_count is None else int(old_count)
            new_left = 1 if new_count is None else int(new_count)
            continue
        if hunk is not None and line[:1] == "\\":
            continue
        if line.startswith("--- "):
            if line[4:] != "/dev/null":
                current.old_path = _strip_prefix(line[4:])
        elif line.startswith("+++ "):
            if line[4:] != "/dev/null":
                current.new_path = _strip_prefix(line[4:])
        elif line.startswith("new file mode"):
            current.status = "added"
        elif line.startswith("deleted file mode"):
            current.status = "deleted"
        elif line.startswith("rename from "):
            current.status = "renamed"
            current.old_path = _unquote(line[len("rename from ") :])
        elif line.startswith("rename to "):
            current.status = "renamed"
            current.new_path = _unquote(line[len("rename to ") :])
        elif line.startswith("Binary files ") or line.startswith("GIT binary patch"):
            current.binary = True
    return files


def file_in(files: list[FileDiff], path: str) -> FileDiff | None:
    for diff in files:
        if path in (diff.new_path, diff.old_path):
            return diff
    return None
