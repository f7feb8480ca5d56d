"""The review page of a change and the artifact lines page: what they show, their posts, their
live comments (the page's websocket), and isolation."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.http import HttpRequest
from django.test import Client

from apps.agents.models import Agent
from apps.artifacts.services import artifact_put
from apps.repos.models import Change, ReviewComment
from apps.repos.reviews import CommentInput, change_comment_create
from apps.teams.models import Membership
from apps.threads.models import Message, MessageKind
from tests.conftest import web_client_for
from tests.reviews.changes import CALC, add_version

pytestmark = pytest.mark.django_db


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def flashed(request: HttpRequest) -> list[str]:
    """The messages (django.contrib.messages) a page post left for the next page."""
    return [str(message) for message in get_messages(request)]


def main_moves_on_against(change: Change) -> None:
    """main's f2 becomes a * b while the change's is a - b: the change no longer merges."""
    work = change.work  # type: ignore[attr-defined]  # set by the change fixture
    work.git("checkout", "--quiet", "main")
    other = CALC.replace("def f2(a, b):\n    return a + b", "def f2(a, b):\n    return a * b")
    work.commit({"calc.py": other}, "meanwhile on main")
    work.git("push", "--quiet", "origin", "HEAD:refs/heads/main")


@pytest.fixture(autouse=True)
def _runs_not_executed(manual_run_dispatch) -> None:
    """Deliveries are checked, not run (test_delivery.py runs an agent)."""


def test_the_page_shows_files_counts_and_highlighted_lines(web, change):
    page = web.get(f"/changes/{change.pk}/")

    html = page.content.decode()
    assert page.status_code == 200
    listed = 'href="#file-0">calc.py</a> <span class="add">+1</span> <span class="del">−1</span>'
    assert listed in html
    # pygments' classes: "return" is a keyword (k), "-" an operator (o).
    assert '<td class="n">6</td><td class="c">    <span class="k">return</span>' in html
    assert page["Content-Security-Policy"]  # the page's policy, with nothing inline needed
    assert "<script>" not in html and " style=" not in html


def test_side_by_side_pairs_the_removed_and_added_line(web, change):
    html = web.get(f"/changes/{change.pk}/?view=split").content.decode()

    assert '<tr class="p"><td class="o">6</td><td class="c d">' in html
    assert '<td class="n">6</td><td class="c a">' in html


@pytest.mark.parametrize("view", ["", "split"])
def test_a_file_shown_plain_gets_its_colours_cell_by_cell(web, change, settings, view):
    # No time to lex on this page (a big change seen for the first time): the lines come plain,
    # the table marked for the page's script, and the highlight call answers each code cell.
    from django.core.cache import cache

    from apps.repos import review_page

    cache.clear()
    review_page._rows_cache = review_page._RowsCache()
    settings.OZWEB_REVIEW_HIGHLIGHT_MS = 0.0
    query = "?view=split" if view else ""
    html = web.get(f"/changes/{change.pk}/{query}").content.decode()

    table = html.split('id="file-0"')[1].split("</table>")[0]
    assert 'data-hl="0"' in table and '<span class="k">' not in table
    url = re.search(r'data-highlight-url="([^"]+)"', html).group(1).replace("&amp;", "&")
    answer = web.get(f"{url}&file=0").json()
    plain = re.findall(r'<td class="c[^"]*">(.*?)</td>', table)
    assert answer["path"] == "calc.py" and len(answer["cells"]) == len(plain)
    assert [text_of(c) for c in answer["cells"]] == [text_of(c) for c in plain]
    assert any('<span class="k">return</span>' in c for c in answer["cells"])
    assert web.get(f"{url}&file=1").status_code == 404
    assert web.get(f"/changes/{change.pk}/highlight/?file=x").status_code == 404
    assert web.get(f"/changes/{change.pk}/highlight/?file=0&version=9").status_code == 404
    # Seen once in colour, the next view is highlighted inline.
    again = web.get(f"/changes/{change.pk}/{query}").content.decode()
    assert 'data-hl="' not in again


def test_compare_two_versions_shows_only_what_changed_between_them(web, change):
    fixed = (change.work.path / "calc.py").read_text().replace("def f9(", "def nine(")
    add_version(change, change.work, {"calc.py": fixed}, "rename f9")

    whole = web.get(f"/changes/{change.pk}/").content.decode()
    compared = web.get(f"/changes/{change.pk}/?from=1&version=2").content.decode()

    assert "def nine(" in text_of(whole) and "return a - b" in text_of(whole)
    diff = text_of(compared.split('id="file-0"')[1])
    assert "def nine(" in diff and "return a - b" not in diff
    assert web.get(f"/changes/{change.pk}/?version=7").status_code == 404


def test_changes_since_my_last_review_links_the_versions_after_it(web, api, change):
    api.post(f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "comment"}, format="json")
    add_version(change, change.work, {"extra.py": "x = 1\n"}, "more")

    html = web.get(f"/changes/{change.pk}/").content.decode()

    assert 'id="since-review" href="?from=1&version=2"' in html


def test_a_comment_posted_from_the_page_is_placed_under_its_line(web, change):
    posted = web.post(
        f"/changes/{change.pk}/comment/",
        {"path": "calc.py", "side": "new", "line": "6", "version": "1", "body": "add, not sub"},
        headers={"HX-Request": "true"},
    )
    html = web.get(f"/changes/{change.pk}/").content.decode()

    assert posted.status_code == 200
    assert 'class="rc-thread state-pending"' in posted.content.decode()
    row = html.index('<td class="n">6</td>')
    assert row < html.index("add, not sub") < html.index('<td class="n">7</td>')


def test_a_comment_on_a_line_not_in_the_diff_answers_the_form_with_the_reason(web, change):
    posted = web.post(
        f"/changes/{change.pk}/comment/",
        {"path": "calc.py", "side": "new", "line": "30", "body": "?"},
        headers={"HX-Request": "true"},
    )

    assert posted.status_code == 422
    assert posted["HX-Retarget"] == "#rc-form-error"
    assert "not in the diff" in posted.content.decode()


def test_request_changes_from_the_page_posts_the_review_in_the_thread(web, change, owner):
    change_comment_create(
        actor=owner, change=change, path="calc.py",
        comment=CommentInput(line=6, body="add, not sub"),
    )  # fmt: skip

    response = web.post(f"/changes/{change.pk}/review/", {"verdict": "request_changes"})

    assert response.status_code == 302
    message = Message.objects.get(kind=MessageKind.REVIEW)
    assert message.thread_id == change.thread_id and "add, not sub" in message.body
    thread_page = web.get(f"/threads/{change.thread_id}/").content.decode()
    assert "add, not sub" in thread_page


def test_a_viewer_reads_the_page_without_the_review_controls(change, viewer):
    client = web_client_for(viewer.user)

    html = client.get(f"/changes/{change.pk}/").content.decode()

    assert 'class="review read-only"' in html
    assert "rc-form-template" not in html and "review-request-changes" not in html
    assert client.post(f"/changes/{change.pk}/review/", {"verdict": "approve"}).status_code == 403


def test_merge_from_the_page_and_a_conflict_shown_with_its_paths(web, change):
    html = web.get(f"/changes/{change.pk}/").content.decode()
    assert 'id="merge-clean"' in html

    response = web.post(f"/changes/{change.pk}/merge/")

    change.refresh_from_db()
    assert response.status_code == 302 and change.status == "merged"


def test_close_from_the_page_and_closing_again_is_said_on_the_page(
    web: Client, change: Change
) -> None:
    closed = web.post(f"/changes/{change.pk}/close/")
    again = web.post(f"/changes/{change.pk}/close/")

    change.refresh_from_db()
    assert change.status == "closed"
    assert closed.status_code == 302 and closed["Location"] == f"/changes/{change.pk}/"
    assert flashed(closed.wsgi_request) == []
    assert again.status_code == 302 and again["Location"] == f"/changes/{change.pk}/"
    assert flashed(again.wsgi_request) == ["The change is closed."]


def test_send_conflict_from_the_page_messages_the_agent_with_the_paths(
    web: Client, change: Change, agent: Agent
) -> None:
    main_moves_on_against(change)

    response = web.post(f"/changes/{change.pk}/send-conflict/")

    assert response.status_code == 302 and response["Location"] == f"/changes/{change.pk}/"
    assert flashed(response.wsgi_request) == ["Sent the conflict to @coder."]
    message = Message.objects.get(thread=change.thread, data__change_id=change.pk)
    assert message.data == {"change_id": change.pk, "conflicts": ["calc.py"]}
    assert list(message.deliveries.values_list("agent", flat=True)) == [agent.pk]


def test_send_conflict_of_a_change_that_merges_cleanly_is_said_on_the_page(
    web: Client, change: Change
) -> None:
    response = web.post(f"/changes/{change.pk}/send-conflict/")

    assert response.status_code == 302 and response["Location"] == f"/changes/{change.pk}/"
    refusal = "The change merges cleanly: there is no conflict to send."
    assert flashed(response.wsgi_request) == [refusal]
    assert not Message.objects.filter(data__change_id=change.pk, author_user__isnull=False)


def test_a_viewer_can_not_close_or_send_a_conflict_from_the_page(
    change: Change, viewer: Membership
) -> None:
    main_moves_on_against(change)
    client = web_client_for(viewer.user)

    statuses = [
        client.post(f"/changes/{change.pk}/close/").status_code,
        client.post(f"/changes/{change.pk}/send-conflict/").status_code,
    ]

    change.refresh_from_db()
    assert statuses == [403, 403]
    assert change.status == "open"
    assert not Message.objects.filter(data__change_id=change.pk, author_user__isnull=False)


def test_another_teams_pages_and_sockets_are_404(change, other_team, owner):
    spy = web_client_for(other_team["owner"].user)
    comment = change_comment_create(
        actor=owner, change=change, path="calc.py", comment=CommentInput(line=6, body="x")
    )
    artifact = artifact_put(team=change.team, name="plan.md", content="a\n").artifact

    statuses = [
        spy.get(f"/changes/{change.pk}/").status_code,
        spy.post(f"/changes/{change.pk}/comment/", {"path": "calc.py", "line": "6"}).status_code,
        spy.post(f"/changes/{change.pk}/review/", {"verdict": "approve"}).status_code,
        spy.post(f"/changes/{change.pk}/merge/").status_code,
        spy.post(f"/changes/{change.pk}/close/").status_code,
        spy.post(f"/changes/{change.pk}/send-conflict/").status_code,
        spy.post(f"/review-comments/{comment.pk}/resolve/").status_code,
        spy.get(f"/changes/{change.pk}/highlight/?file=0").status_code,
        spy.get(f"/artifacts/{artifact.pk}/review/").status_code,
        spy.post(f"/artifacts/{artifact.pk}/review/comment/", {"line": "1"}).status_code,
        spy.post(f"/artifacts/{artifact.pk}/review/submit/", {"verdict": "approve"}).status_code,
    ]

    assert statuses == [404] * 11
    assert ReviewComment.objects.count() == 1


def test_the_artifact_lines_page_takes_line_comments(web, team, agent, thread):
    version = artifact_put(
        team=team, name="plan.md", content="# Plan\n\n1. parse\n", kind="plan",
        media_type="text/markdown", thread=thread, author_agent=agent,
    )  # fmt: skip
    artifact = version.artifact

    posted = web.post(
        f"/artifacts/{artifact.pk}/review/comment/",
        {"line": "3", "version": "1", "body": "and add"},
        headers={"HX-Request": "true"},
    )
    html = web.get(f"/artifacts/{artifact.pk}/review/?v=1").content.decode()
    detail = web.get(f"/artifacts/{artifact.pk}/").content.decode()

    assert posted.status_code == 200
    assert html.index('<td class="n">3</td>') < html.index("and add")
    assert f'href="/artifacts/{artifact.pk}/review/?v=1"' in detail


def test_the_dashboard_and_the_thread_list_open_changes_with_their_review_state(
    web, api, change, team, thread
):
    api.post(f"/api/v1/changes/{change.pk}/reviews/", {"verdict": "request_changes"}, format="json")

    dashboard = web.get(f"/teams/{team.pk}/").content.decode()
    panel = web.get(f"/teams/{team.pk}/changes/").content.decode()
    in_thread = web.get(f"/threads/{thread.pk}/changes/").content.decode()

    assert f'hx-get="/teams/{team.pk}/changes/"' in dashboard
    for html in (panel, in_thread):
        assert f'href="/changes/{change.pk}/">Fix add</a>' in html
        assert "changes requested" in html


def test_a_thread_without_changes_gets_no_panel(web, team):
    from tests.factories import ThreadFactory

    quiet = ThreadFactory(team=team, name="quiet")

    assert web.get(f"/threads/{quiet.pk}/changes/").status_code == 204


def test_another_teams_change_panels_are_404(change, other_team, team, thread):
    spy = web_client_for(other_team["owner"].user)

    assert spy.get(f"/teams/{team.pk}/changes/").status_code == 404
    assert spy.get(f"/threads/{thread.pk}/changes/").status_code == 404


def test_resolve_from_the_page_resolves_the_thread(web, change, owner):
    root = change_comment_create(
        actor=owner, change=change, path="calc.py", comment=CommentInput(line=6, body="x")
    )
    reply = change_comment_create(
        actor=owner,
        change=change,
        path=None,
        comment=CommentInput(line=0, body="y", reply_to=root.pk),
    )

    response = web.post(f"/review-comments/{reply.pk}/resolve/", headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert set(ReviewComment.objects.values_list("state", flat=True)) == {"resolved"}
