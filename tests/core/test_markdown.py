import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.core.markdown import render_markdown


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """The real tags in `html` with their attributes (escaped text is not a tag)."""
    found: list[tuple[str, dict[str, str | None]]] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collector().feed(html)
    return found


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        "<img src=x onerror=alert(1)>",
        "[x](<javascript:alert(1)>)",
        '<a href="javascript:alert(1)">x</a>',
        "![x](javascript:alert(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    ],
)
def test_nothing_executable_gets_through(source):
    tags = elements(render_markdown(source))

    assert {tag for tag, _ in tags} <= {"p", "a"}
    for _, attrs in tags:
        assert not any(name.startswith("on") for name in attrs)
        assert not (attrs.get("href") or "").lower().startswith(("javascript:", "data:"))


def test_code_blocks_render_in_pre_code_with_the_language_class():
    html = render_markdown("```python\nprint('<b>hi</b>')\n```")

    assert html.startswith('<pre><code class="language-python">')
    assert "&lt;b&gt;hi&lt;/b&gt;" in html


def test_safe_links_get_rel_noopener():
    html = render_markdown("[docs](https://example.com/docs)")

    assert 'href="https://example.com/docs"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_mentions_are_highlighted_in_prose_only():
    html = render_markdown("hi @coder, see `@property` and [x](https://e.com/@bob) ada@example.com")

    assert '<span class="mention">@coder</span>' in html
    assert "<code>@property</code>" in html
    assert '<a href="https://e.com/@bob"' in html
    assert "ada@example.com" in html
    assert html.count('class="mention"') == 1


def test_mentions_in_fenced_code_are_not_highlighted():
    html = render_markdown("```\n@decorator\ndef f(): ...\n```")

    assert "mention" not in html


def _full_path(text: str) -> str:
    """render_markdown without its fast path for plain lines."""
    from unittest import mock

    from apps.core import markdown

    with mock.patch.object(markdown, "_PLAIN", re.compile(r"(?!)")):
        return render_markdown(text)


PLAIN_ALPHABET = "abcXYZ019 ,.:;?!'/()+=%-"


@given(
    text=st.one_of(
        st.text(alphabet=PLAIN_ALPHABET, max_size=40),  # mostly the fast path
        st.text(alphabet=PLAIN_ALPHABET + '*_`#<>&[]\\|"@~\n\t', max_size=40),
    )
)
@settings(max_examples=400, deadline=None)
def test_a_plain_line_renders_as_the_full_markdown_path_does(text: str) -> None:
    assert render_markdown(text) == _full_path(text)


@pytest.mark.parametrize(
    "text",
    ["F 1796173573359931119", "it's done (mostly) - see /tmp/x: 100% ok!", "trailing  ", "a"],
)
def test_the_fast_path_takes_plain_lines(text: str) -> None:
    from apps.core import markdown

    assert markdown._PLAIN.fullmatch(text)
    assert render_markdown(text) == _full_path(text)
