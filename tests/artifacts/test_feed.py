"""The thread feed's side of artifacts and held deliveries: cards, the held badge, Release."""

import pytest

from apps.runs.models import Run
from apps.threads.events import message_html
from apps.threads.models import Delivery, Message, MessageKind
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_new_version_shows_as_a_card_linking_to_that_version(web, put, thread, agent):
    put("plan.md", "# one", kind="plan", thread=thread, author_agent=agent)
    version = put("plan.md", "# two and more", kind="plan", author_agent=agent)

    html = web.get(f"/threads/{thread.pk}/").content.decode()

    assert f'href="/artifacts/{version.artifact_id}/?v=2#preview"' in html
    assert 'class="artifact-card"' in html
    assert "v2 · 14\xa0bytes · <code>text/markdown</code>" in html


def test_the_pushed_card_is_the_same_fragment(put, thread):
    put("notes.txt", "x", thread=thread)
    card = Message.objects.get(thread=thread, kind=MessageKind.ARTIFACT)

    html = message_html(card)

    assert 'class="artifact-card"' in html
    assert "notes.txt" in html


def test_a_card_escapes_the_artifact_name(put, thread):
    put("notes.txt", thread=thread)
    card = Message.objects.get(thread=thread, kind=MessageKind.ARTIFACT)
    card.data["name"] = "<script>x</script>"

    html = message_html(card)

    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html


def test_a_held_delivery_says_so_with_a_release_button(web, held_delivery, thread):
    html = web.get(f"/threads/{thread.pk}/").content.decode()

    assert "held — waiting for a human" in html
    assert f'hx-post="/threads/{thread.pk}/deliveries/{held_delivery.pk}/release/"' in html
    assert "past this team&#x27;s limit of 2" in html  # the reason, as a tooltip


def test_a_viewers_page_hides_release(viewer, held_delivery, thread):
    html = web_client_for(viewer.user).get(f"/threads/{thread.pk}/").content.decode()

    assert 'class="thread read-only"' in html


def test_release_lets_the_message_through_and_returns_the_deliveries(
    web, held_delivery, thread, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(f"/threads/{thread.pk}/deliveries/{held_delivery.pk}/release/", **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(f'<div class="deliveries" id="msg-{held_delivery.message_id}')
    assert "waiting for a human" not in html
    held_delivery.refresh_from_db()
    assert (held_delivery.held, held_delivery.reason) == (False, "Released by a human.")
    assert Run.objects.filter(agent=agent, thread=thread).exists()  # dispatched


def test_releasing_twice_shows_the_current_state(web, held_delivery, thread):
    url = f"/threads/{thread.pk}/deliveries/{held_delivery.pk}/release/"
    web.post(url, **HTMX)

    response = web.post(url, **HTMX)

    assert response.status_code == 200
    assert "/release/" not in response.content.decode()


def test_viewers_cannot_release(viewer, held_delivery, thread):
    response = web_client_for(viewer.user).post(
        f"/threads/{thread.pk}/deliveries/{held_delivery.pk}/release/", **HTMX
    )

    assert response.status_code == 403
    assert Delivery.objects.get(pk=held_delivery.pk).held


def test_a_delivery_of_another_thread_is_404(web, held_delivery, team):
    from tests.factories import ThreadFactory

    elsewhere = ThreadFactory(team=team, name="elsewhere")

    response = web.post(f"/threads/{elsewhere.pk}/deliveries/{held_delivery.pk}/release/")

    assert response.status_code == 404
