"""The diff of the review page as HTML rows, built in Python.

A change of 200 files and 20,000 lines is 20,000 table rows: a template loop would spend
most of the page's time on them, so each file's rows are joined here from f-strings (the
highlighted code comes from apps.repos.highlight, already escaped), and the comment threads
are put in after the row of their line. The markup is lean on purpose (class names of one
letter, line numbers as the cells' text): the page's script reads the side from the cell's
class ("o" old, "n" new) and the line from its text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

from apps.repos.diffs import DiffLine, FileDiff
from apps.repos.highlight import highlight_many, plain

logger = logging.getLogger(__name__)

Anchor = tuple[str, str, int]  # (path, side, line)
KIND_CLASS = {"add": "a", "del": "d", "ctx": "x"}


@dataclass(frozen=True)
class RenderedFile:
    index: int
    path: str
    old_path: str
    status: str
    additions: int
    deletions: int
    binary: bool
    rows: SafeString
    deferred: bool = False  # shown plain: its colours are fetched by the page (code_cells)


def _sides(diff: FileDiff) -> tuple[list[str], list[str]]:
    new: list[str] = []
    old: list[str] = []
    for hunk in diff.hunks:
        for line in hunk.lines:
            (old if line.kind == "del" else new).append(line.text)
    return new, old


def _code_lookup(diff: FileDiff, new_html: list[str], old_html: list[str]) -> list[str]:
    """The highlighted HTML of every diff line, in order (context from the new side)."""
    out: list[str] = []
    new_i = old_i = 0
    for hunk in diff.hunks:
        for line in hunk.lines:
            if line.kind == "del":
                out.append(old_html[old_i])
                old_i += 1
            else:
                out.append(new_html[new_i])
                new_i += 1
    return out


def _thread_row(html: str, columns: int) -> str:
    return f'<tr class="t"><td colspan="{columns}">{html}</td></tr>'


def _unified_rows(
    diff: FileDiff, code: list[str], threads: Mapping[Anchor, str], path: str
) -> Iterator[str]:
    i = 0
    for hunk in diff.hunks:
        yield f'<tr class="h"><td colspan="3">{escape(hunk.header, quote=False)}</td></tr>'
        for line in hunk.lines:
            old = "" if line.old is None else line.old
            new = "" if line.new is None else line.new
            yield (
                f'<tr class="{KIND_CLASS[line.kind]}"><td class="o">{old}</td>'
                f'<td class="n">{new}</td><td class="c">{code[i]}</td></tr>'
            )
            i += 1
            if threads:
                yield from _threads_after(line, None, threads, path, 3)


def _threads_after(
    line: DiffLine | None,
    other: DiffLine | None,
    threads: Mapping[Anchor, str],
    path: str,
    columns: int,
) -> Iterator[str]:
    for item in (line, other):
        if item is None:
            continue
        if item.old is not None and (html := threads.get((path, "old", item.old))):
            yield _thread_row(html, columns)
        if item.new is not None and (html := threads.get((path, "new", item.new))):
            yield _thread_row(html, columns)


def _split_rows(
    diff: FileDiff, code: list[str], threads: Mapping[Anchor, str], path: str
) -> Iterator[str]:
    i = 0
    for hunk in diff.hunks:
        yield f'<tr class="h"><td colspan="4">{escape(hunk.header, quote=False)}</td></tr>'
        lines = hunk.lines
        n = len(lines)
        j = 0
        while j < n:
            line = lines[j]
            if line.kind == "ctx":
                yield (
                    f'<tr class="x"><td class="o">{line.old}</td><td class="c">{code[i]}</td>'
                    f'<td class="n">{line.new}</td><td class="c">{code[i]}</td></tr>'
                )
                i += 1
                j += 1
                if threads:
                    yield from _threads_after(line, None, threads, path, 4)
                continue
            # A run of removed lines and the added lines after it, side by side.
            dels: list[tuple[DiffLine, str]] = []
            while j < n and lines[j].kind == "del":
                dels.append((lines[j], code[i]))
                i += 1
                j += 1
            adds: list[tuple[DiffLine, str]] = []
            while j < n and lines[j].kind == "add":
                adds.append((lines[j], code[i]))
                i += 1
                j += 1
            for k in range(max(len(dels), len(adds))):
                left = dels[k] if k < len(dels) else None
                right = adds[k] if k < len(adds) else None
                cells = (
                    f'<td class="o">{left[0].old}</td><td class="c d">{left[1]}</td>'
                    if left
                    else '<td class="o e"></td><td class="c e"></td>'
                ) + (
                    f'<td class="n">{right[0].new}</td><td class="c a">{right[1]}</td>'
                    if right
                    else '<td class="n e"></td><td class="c e"></td>'
                )
                yield f'<tr class="p">{cells}</tr>'
                if threads:
                    yield from _threads_after(
                        left[0] if left else None, right[0] if right else None, threads, path, 4
                    )


class _RowsCache:
    """The rows of files without comments, by (diff, file, view), in this process, up to
    MAX_BYTES: a diff between two commits never changes, so a page seen once is mostly a join
    of strings the next time (the highlight cache covers other processes and restarts)."""

    MAX_BYTES = 64 * 1024 * 1024

    def __init__(self) -> None:
        self._rows: OrderedDict[tuple[str, str, bool], str] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, bool]) -> str | None:
        with self._lock:
            rows = self._rows.get(key)
            if rows is not None:
                self._rows.move_to_end(key)
            return rows

    def put(self, key: tuple[str, str, bool], rows: str) -> None:
        if len(rows) > self.MAX_BYTES // 4:
            return
        with self._lock:
            if key in self._rows:
                return
            self._rows[key] = rows
            self._bytes += len(rows)
            while self._bytes > self.MAX_BYTES:
                _, dropped = self._rows.popitem(last=False)
                self._bytes -= len(dropped)


_rows_cache = _RowsCache()


def render_files(
    files: list[FileDiff],
    *,
    split: bool,
    threads: Mapping[Anchor, str],
    diff_key: str = "",
    budget_seconds: float | None = None,
) -> list[RenderedFile]:
    """Every file's rows (unified or side by side), its comment threads under their lines.
    `diff_key` names the diff (its two commits) for the rows cache; "" for none. With a
    `budget_seconds`, files not highlighted before yet are lexed only for that long: the
    rest are rendered plain and marked `deferred` (the page asks for their colours)."""
    with_threads = {path for path, _, _ in threads}
    rows_of: dict[int, str] = {}
    deferred: set[int] = set()
    if diff_key:
        for index, diff in enumerate(files):
            if diff.path not in with_threads:
                cached = _rows_cache.get((diff_key, diff.path, split))
                if cached is not None:
                    rows_of[index] = cached
    todo = [index for index in range(len(files)) if index not in rows_of]
    sides = {index: _sides(files[index]) for index in todo}
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    highlighted = highlight_many([(files[i].path, *sides[i]) for i in todo], deadline=deadline)
    for index, done in zip(todo, highlighted, strict=True):
        diff = files[index]
        if done is None:
            deferred.add(index)
            new_html, old_html = plain(sides[index][0]), plain(sides[index][1])
        else:
            new_html, old_html = done
        code = _code_lookup(diff, new_html, old_html)
        rows = "".join((_split_rows if split else _unified_rows)(diff, code, threads, diff.path))
        rows_of[index] = rows
        if diff_key and diff.path not in with_threads and done is not None:
            _rows_cache.put((diff_key, diff.path, split), rows)
    return [
        RenderedFile(
            index=index,
            path=diff.path,
            old_path=diff.old_path,
            status=diff.status,
            additions=diff.additions,
            deletions=diff.deletions,
            binary=diff.binary,
            rows=mark_safe(rows_of[index]),  # noqa: S308 - built from escaped parts above
            deferred=index in deferred,
        )
        for index, diff in enumerate(files)
    ]


def code_cells(diff: FileDiff, *, split: bool) -> list[str]:
    """A file's highlighted code in the order of its rows' code cells (`td.c`, comment rows
    aside), as `_unified_rows` / `_split_rows` lay them out: what a deferred file's page
    puts in place of its plain text, leaving rows, comments and open forms as they are."""
    new, old = _sides(diff)
    [done] = highlight_many([(diff.path, new, old)])
    assert done is not None  # no deadline: always highlighted
    code = _code_lookup(diff, *done)
    if not split:
        return code
    cells: list[str] = []
    i = 0
    for hunk in diff.hunks:
        lines = hunk.lines
        n, j = len(lines), 0
        while j < n:
            if lines[j].kind == "ctx":
                cells += [code[i], code[i]]
                i += 1
                j += 1
                continue
            dels: list[str] = []
            while j < n and lines[j].kind == "del":
                dels.append(code[i])
                i += 1
                j += 1
            adds: list[str] = []
            while j < n and lines[j].kind == "add":
                adds.append(code[i])
                i += 1
                j += 1
            for k in range(max(len(dels), len(adds))):
                cells += [dels[k] if k < len(dels) else "", adds[k] if k < len(adds) else ""]
    return cells


# Where the review page's template leaves the diff: the view puts the files' sections there,
# so their megabytes never pass through the template engine (whose every node level copies
# its whole output into a new SafeString: ~10 copies of the page).
DIFF_MARKER = "<!--ozweb:diff-->"


def file_section(file: RenderedFile, *, split: bool) -> str:
    renamed = f"{escape(file.old_path)} → " if file.status == "renamed" else ""
    if file.binary:
        body = '<p class="muted">Binary file: not shown.</p>'
    else:
        deferred = f' data-hl="{file.index}"' if file.deferred else ""
        body = (
            f'<table class="diff{" split" if split else ""}" data-path="{escape(file.path)}"'
            f"{deferred}>{file.rows}</table>"
        )
    return (
        f'<section class="file card" id="file-{file.index}"><h3 class="file-head">'
        f'<span class="file-status s-{escape(file.status)}">{escape(file.status)}</span> '
        f"{renamed}{escape(file.path)} "
        f'<span class="add">+{file.additions}</span> <span class="del">−{file.deletions}</span>'
        f"</h3>{body}</section>"
    )


def splice_files(page: bytes, files: list[RenderedFile], *, split: bool) -> bytes:
    """The rendered page with the files' sections where the template left DIFF_MARKER."""
    head, tail = page.split(DIFF_MARKER.encode(), 1)
    return b"".join([head, *(file_section(f, split=split).encode() for f in files), tail])


def render_text_lines(text: str, *, path: str, threads: Mapping[Anchor, str]) -> SafeString:
    """A whole text (an artifact version) as numbered, highlighted rows, for line comments."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    [done] = highlight_many([(path, lines, [])])
    assert done is not None  # no deadline: always highlighted
    html_lines = done[0]
    parts = []
    for number, html in enumerate(html_lines, start=1):
        parts.append(f'<tr class="x"><td class="n">{number}</td><td class="c">{html}</td></tr>')
        if (thread := threads.get((path, "new", number))) is not None:
            parts.append(_thread_row(thread, 2))
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped parts above


def prewarm(*, change_id: int, version_id: int) -> None:
    """Highlight a freshly pushed version's diff in the background, so the review page's first
    view reads the caches instead of lexing every line (bench/review.py: a 20,000-line change
    took ~60× its second view). Best effort: the page renders the same without it."""

    def work() -> None:
        from django.db import connection

        from apps.repos.models import ChangeVersion
        from apps.repos.review_selectors import version_diff

        try:
            version = ChangeVersion.objects.select_related("change__repo").get(pk=version_id)
            files = version_diff(change=version.change, version=version)
            render_files(
                files,
                split=False,
                threads={},
                diff_key=f"{version.change.repo_id}:{version.base_sha}:{version.head}",
            )
        except Exception:
            logger.warning("pre-highlighting change %s failed", change_id, exc_info=True)
        finally:
            connection.close()  # this thread's own: nothing else will close it

    threading.Thread(target=work, name=f"prewarm-change-{change_id}", daemon=True).start()
