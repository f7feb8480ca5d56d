import re

import pytest

from apps.artifacts.models import MemoryNote
from apps.artifacts.services import memory_set
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def preview_of(html: str) -> str:
    match = re.search(
        r'<section class="card artifact-preview" id="preview">(.*?)</section>', html, re.S
    )
    assert match, "no preview section"
    return match.group(1)


def test_pages_need_a_login(client, team):
    response = client.get(f"/teams/{team.pk}/artifacts/")

    assert response.status_code == 302


def test_sidebar_links_to_artifacts_and_memory(web, team):
    html = web.get(f"/teams/{team.pk}/").content.decode()

    assert f'href="/teams/{team.pk}/artifacts/"' in html
    assert f'href="/teams/{team.pk}/memory/"' in html


def test_artifact_list_shows_name_kind_version_and_thread(web, team, thread, put):
    put("plan.md", "# one", kind="plan", thread=thread)
    put("plan.md", "# two", kind="plan")
    put("loose.txt")

    html = web.get(f"/teams/{team.pk}/artifacts/").content.decode()

    assert "plan.md" in html and "loose.txt" in html
    assert "v2" in html
    assert f'href="/threads/{thread.pk}/">#general</a>' in html


def test_artifact_list_filters_by_thread(web, team, thread, put):
    put("in-thread.md", thread=thread)
    put("elsewhere.md")

    html = web.get(f"/teams/{team.pk}/artifacts/", {"thread": thread.pk}).content.decode()

    assert "in-thread.md" in html
    assert "elsewhere.md" not in html


def test_artifact_detail_lists_versions_with_authors(web, put, agent, owner):
    put("notes.txt", "first", author_agent=agent)
    latest = put("notes.txt", "second", author_user=owner.user)

    html = web.get(f"/artifacts/{latest.artifact_id}/").content.decode()

    assert 'id="version-1"' in html and 'id="version-2"' in html
    assert latest.sha256[:12] in html
    assert f'href="/agents/{agent.pk}/">@coder</a>' in html
    assert owner.user.username in html
    assert "second" in preview_of(html)
    assert f"/api/v1/artifacts/{latest.artifact_id}/versions/2/download/" in html


def test_artifact_detail_previews_the_chosen_version(web, put):
    put("notes.txt", "first")
    latest = put("notes.txt", "second")

    html = web.get(f"/artifacts/{latest.artifact_id}/", {"v": 1}).content.decode()

    assert "first" in preview_of(html)
    assert "second" not in preview_of(html)


def test_an_unknown_version_is_404(web, put):
    version = put("notes.txt")

    assert web.get(f"/artifacts/{version.artifact_id}/", {"v": 9}).status_code == 404


def test_a_report_is_rendered_as_safe_markdown(web, put):
    body = (
        "# Findings\n\n**bold**\n\n<script>alert('x')</script>\n\n"
        "[click](javascript:alert(1)) [again](JaVaScRiPt:alert(2)) <img src=x onerror=alert(1)>\n"
    )
    version = put("report.md", body, kind="report")

    preview = preview_of(web.get(f"/artifacts/{version.artifact_id}/").content.decode())
    preview = preview.split('<div class="md artifact-md">', 1)[1]

    assert "<h1>Findings</h1>" in preview and "<strong>bold</strong>" in preview
    assert "<script" not in preview
    assert "href=" not in preview.lower()  # neither javascript: link became one
    assert "<img" not in preview
    assert "&lt;script&gt;" in preview


def test_a_patch_is_shown_as_an_escaped_diff(web, put):
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-old()\n+new('<b>')\n same\n"
    version = put("fix.patch", patch, kind="patch")

    preview = preview_of(web.get(f"/artifacts/{version.artifact_id}/").content.decode())

    assert '<span class="diff-meta">--- a/x.py</span>' in preview
    assert '<span class="diff-hunk">@@ -1 +1 @@</span>' in preview
    assert '<span class="diff-del">-old()</span>' in preview
    assert '<span class="diff-add">+new(&#x27;&lt;b&gt;&#x27;)</span>' in preview
    assert '<span class="diff-ctx"> same</span>' in preview


def test_an_html_file_is_shown_as_text_never_rendered(web, put):
    version = put("page.html", "<html><script>alert(1)</script></html>")

    preview = preview_of(web.get(f"/artifacts/{version.artifact_id}/").content.decode())

    assert version.media_type == "text/html"
    assert "<pre" in preview
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in preview
    assert "<script" not in preview


def test_a_binary_file_has_no_preview_only_a_download(web, put):
    version = put("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0binary")

    preview = preview_of(web.get(f"/artifacts/{version.artifact_id}/").content.decode())

    assert "no preview" in preview
    assert "<pre" not in preview
    assert "/download/" in preview


def test_text_with_nul_bytes_counts_as_binary(web, put):
    version = put("data.txt", b"looks like text\0but is not")

    preview = preview_of(web.get(f"/artifacts/{version.artifact_id}/").content.decode())

    assert "no preview" in preview


def test_a_link_shows_its_url_with_noopener(web, put):
    version = put("docs", "Where the docs live", kind="link", url="https://example.com/docs")

    preview = preview_of(web.get(f"/artifacts/{version.artifact_id}/").content.decode())

    assert (
        '<a href="https://example.com/docs" rel="noopener noreferrer nofollow" target="_blank">'
        in preview
    )
    assert "Where the docs live" in preview


def test_another_teams_artifact_is_404(put, other_team):
    version = put("ours.txt")
    client = web_client_for(other_team["owner"].user)

    assert client.get(f"/artifacts/{version.artifact_id}/").status_code == 404


# -- memory -----------------------------------------------------------------------------------


def test_memory_page_lists_notes_with_who_and_an_edit_form(web, team, agent):
    memory_set(team=team, key="conventions/tests", value="pytest functions", agent=agent)

    html = web.get(f"/teams/{team.pk}/memory/").content.decode()

    assert "conventions/tests" in html and "pytest functions" in html
    assert "@coder" in html
    assert 'id="memory-form"' in html
    assert f'hx-post="/teams/{team.pk}/memory/delete/"' in html


def test_memory_page_is_read_only_for_viewers(viewer, team):
    memory_set(team=team, key="k", value="v")

    html = web_client_for(viewer.user).get(f"/teams/{team.pk}/memory/").content.decode()

    assert '<pre class="memory-value">v</pre>' in html
    assert 'id="memory-form"' not in html
    assert "/memory/delete/" not in html


def test_adding_a_note_over_htmx_returns_the_panel(web, team, owner):
    response = web.post(
        f"/teams/{team.pk}/memory/save/", {"key": "deploy:host", "value": "db1"}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="memory-panel">')
    assert "deploy:host" in html
    note = MemoryNote.objects.get(team=team, key="deploy:host")
    assert (note.value, note.updated_by_user) == ("db1", owner.user)


def test_editing_a_note_replaces_its_value(web, team):
    memory_set(team=team, key="k", value="old")

    web.post(f"/teams/{team.pk}/memory/save/", {"key": "k", "value": "new"}, **HTMX)

    assert MemoryNote.objects.get(team=team, key="k").value == "new"


def test_a_bad_key_comes_back_with_the_error(web, team):
    response = web.post(f"/teams/{team.pk}/memory/save/", {"key": "!bad", "value": "x"}, **HTMX)

    assert response.status_code == 422
    assert "A memory key is" in response.content.decode()
    assert not MemoryNote.objects.exists()


def test_deleting_a_note(web, team):
    memory_set(team=team, key="k", value="v")

    response = web.post(f"/teams/{team.pk}/memory/delete/", {"key": "k"}, **HTMX)

    assert response.status_code == 200
    assert not MemoryNote.objects.exists()


def test_without_htmx_saving_redirects_to_the_page(web, team):
    response = web.post(f"/teams/{team.pk}/memory/save/", {"key": "k", "value": "v"})

    assert response.status_code == 302
    assert response["Location"] == f"/teams/{team.pk}/memory/"


@pytest.mark.parametrize("action", ["save", "delete"])
def test_viewers_cannot_change_notes(viewer, team, action):
    memory_set(team=team, key="k", value="v")

    response = web_client_for(viewer.user).post(
        f"/teams/{team.pk}/memory/{action}/", {"key": "k", "value": "changed"}, **HTMX
    )

    assert response.status_code == 403
    assert MemoryNote.objects.get(team=team, key="k").value == "v"


# -- team settings ----------------------------------------------------------------------------


def test_admins_set_the_hop_limit_on_the_members_page(team, admin):
    client = web_client_for(admin.user)
    assert 'name="hop_limit"' in client.get(f"/teams/{team.pk}/members/").content.decode()

    response = client.post(f"/teams/{team.pk}/settings/", {"hop_limit": 5})

    assert response.status_code == 302
    team.refresh_from_db()
    assert team.hop_limit == 5


@pytest.mark.parametrize("value", [0, 1001, "x"])
def test_a_hop_limit_out_of_range_is_refused(web, team, value):
    web.post(f"/teams/{team.pk}/settings/", {"hop_limit": value})

    team.refresh_from_db()
    assert team.hop_limit == 20


def test_members_cannot_change_team_settings(team, member):
    client = web_client_for(member.user)
    assert 'name="hop_limit"' not in client.get(f"/teams/{team.pk}/members/").content.decode()

    response = client.post(f"/teams/{team.pk}/settings/", {"hop_limit": 5})

    assert response.status_code == 403
    team.refresh_from_db()
    assert team.hop_limit == 20
