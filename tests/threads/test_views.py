import re

import pytest

from apps.threads.models import Message, Thread, ThreadKind
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def seqs_on(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article [^>]*data-seq="(\d+)"', html)]


def test_pages_need_a_login(client, thread):
    response = client.get(f"/threads/{thread.pk}/")

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/threads/{thread.pk}/"


def test_thread_page_shows_the_newest_50_and_a_load_older_button(web, thread, post_messages):
    post_messages(thread, 60)

    response = web.get(f"/threads/{thread.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert seqs_on(html) == list(range(11, 61))
    assert f'hx-get="/threads/{thread.pk}/older/?before=11"' in html
    assert 'data-newest-seq="60"' in html
    assert f'ws-connect="/ws/threads/{thread.pk}/"' in html


def test_a_short_thread_has_no_load_older_button(web, thread, post_messages):
    post_messages(thread, 3)

    html = web.get(f"/threads/{thread.pk}/").content.decode()

    assert seqs_on(html) == [1, 2, 3]
    assert "load-older" not in html


def test_older_returns_the_previous_page(web, thread, post_messages):
    post_messages(thread, 60)

    response = web.get(f"/threads/{thread.pk}/older/", {"before": 11}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert seqs_on(html) == list(range(1, 11))
    assert "load-older" not in html
    assert "<html" not in html


def test_older_keeps_a_button_while_there_is_more(web, thread, post_messages):
    post_messages(thread, 120)

    html = web.get(f"/threads/{thread.pk}/older/", {"before": 71}).content.decode()

    assert seqs_on(html) == list(range(21, 71))
    assert "?before=21" in html


@pytest.mark.parametrize("before", ["", "abc"])
def test_older_needs_a_number(web, thread, before):
    assert web.get(f"/threads/{thread.pk}/older/", {"before": before}).status_code == 400


def test_opening_a_thread_marks_it_read(owner, member, thread, post_messages):
    post_messages(thread, 4, author=member.user)
    client = web_client_for(owner.user)
    before = client.get(f"/teams/{thread.team_id}/").content.decode()

    client.get(f"/threads/{thread.pk}/")

    after = client.get(f"/teams/{thread.team_id}/").content.decode()
    assert 'title="4 unread"' in before
    assert "unread" not in after.split('id="thread-list"')[1].split("</ul>")[0]


def test_posting_with_htmx_returns_a_cleared_composer_and_stores_the_message(web, thread, agent):
    response = web.post(f"/threads/{thread.pk}/messages/", {"body": "@coder do it"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<form class="composer" id="composer"')
    assert re.search(r"<textarea [^>]*>\s*</textarea>", html)
    message = Message.objects.get()
    assert (message.seq, message.body) == (1, "@coder do it")
    assert [d.agent for d in message.deliveries.all()] == [agent]


def test_posting_without_htmx_redirects_to_the_thread(web, thread):
    response = web.post(f"/threads/{thread.pk}/messages/", {"body": "plain form"})

    assert response.status_code == 302
    assert response["Location"] == f"/threads/{thread.pk}/"
    assert Message.objects.get().body == "plain form"


def test_a_bad_mention_is_422_with_the_error_and_stores_nothing(web, thread):
    response = web.post(f"/threads/{thread.pk}/messages/", {"body": "@ghost hi"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 422
    assert "No agent or member of this team is called @ghost." in html
    assert "@ghost hi</textarea>" in html  # the draft is kept
    assert not Message.objects.exists()


def test_a_body_over_the_limit_is_422_with_the_limit(web, thread):
    response = web.post(f"/threads/{thread.pk}/messages/", {"body": "x" * 65537}, **HTMX)

    assert response.status_code == 422
    assert "the limit is 65,536 bytes" in response.content.decode()
    assert not Message.objects.exists()


def test_a_viewer_sees_no_composer_and_cannot_post(viewer, thread):
    client = web_client_for(viewer.user)

    page = client.get(f"/threads/{thread.pk}/").content.decode()
    response = client.post(f"/threads/{thread.pk}/messages/", {"body": "let me in"}, **HTMX)

    assert "<textarea" not in page
    assert "you can read but not post" in page
    assert response.status_code == 403
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("body", "forbidden"),
    [
        ("<script>alert(1)</script>", r"<script>alert"),
        ("[x](javascript:alert(1))", r'href="javascript:'),
        ("<img src=x onerror=alert(1)>", r"<img\b"),
        ('<a href="#" onclick="alert(1)">x</a>', r"<a [^>]*onclick"),
    ],
)
def test_markdown_in_the_feed_is_never_executable(web, owner, thread, body, forbidden):
    from apps.threads.services import message_post

    message_post(actor=owner, thread=thread, body=body)

    html = web.get(f"/threads/{thread.pk}/").content.decode()
    feed = html.split('id="feed-messages"')[1].split('id="composer"')[0]
    assert not re.search(forbidden, feed)


def test_code_blocks_render_in_pre_code(web, owner, thread):
    from apps.threads.services import message_post

    message_post(actor=owner, thread=thread, body="```python\n@dataclass\nclass X: ...\n```")

    html = web.get(f"/threads/{thread.pk}/").content.decode()
    assert '<pre><code class="language-python">@dataclass\nclass X: ...\n</code></pre>' in html


def test_new_thread_form_creates_a_channel(web, team):
    response = web.post(f"/teams/{team.pk}/threads/new/", {"name": "Design", "topic": ""})

    assert response.status_code == 302
    assert web.get(response["Location"]).status_code == 200
    assert team.threads.filter(name="design").exists()


def test_a_viewer_cannot_open_the_new_thread_form(viewer, team):
    assert web_client_for(viewer.user).get(f"/teams/{team.pk}/threads/new/").status_code == 403


def test_thread_messages_render_in_the_feed_not_as_flash_notices(web, thread, post_messages):
    post_messages(thread, 3)
    page = web.get(f"/threads/{thread.pk}/").content.decode()
    assert 'class="flash"' not in page
    assert page.count('class="msg kind-text') == 3


# -- the team dashboard and the agent page's direct thread -----------------------------------


def test_dashboard_shows_threads_with_unread_counts_agents_and_activity(
    web, team, member, thread, agent, post_messages
):
    post_messages(thread, 2, author=member.user, prefix="status report")

    html = web.get(f"/teams/{team.pk}/").content.decode()

    assert f'<a href="/threads/{thread.pk}/">#general</a>' in html
    assert 'title="2 unread"' in html
    assert f'id="agent-{agent.pk}"' in html
    assert "@coder" in html
    assert "status report 2" in html
    assert f'ws-connect="/ws/teams/{team.pk}/"' in html


def test_message_agent_opens_its_direct_thread(web, agent):
    response = web.post(f"/agents/{agent.pk}/direct/")

    thread = Thread.objects.get(kind=ThreadKind.DIRECT, agent=agent)
    assert response["Location"] == f"/threads/{thread.pk}/"
    assert "every message here reaches it" in web.get(response["Location"]).content.decode()


def test_another_teams_dashboard_and_agent_are_404(web, other_team):
    assert web.get(f"/teams/{other_team['team'].pk}/").status_code == 404
    assert web.post(f"/agents/{other_team['agent'].pk}/direct/").status_code == 404
