"""Django's messages through the lazily made storage (apps.core.messages): a message set by a
post shows on the page it redirects to, once, whether the cookie or the session holds it."""

from __future__ import annotations

import secrets

import pytest
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory
from django.urls import reverse

from apps.core.messages import LazyFallbackStorage
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db


def test_a_posts_message_shows_once_on_the_next_page(owner):
    client = web_client_for(owner.user)
    team = owner.team
    response = client.post(
        reverse("team-settings", kwargs={"team_id": team.pk}), {"hop_limit": 12}, follow=True
    )
    assert "The hop limit is now 12." in response.content.decode()
    again = client.get(reverse("team-members", kwargs={"team_id": team.pk}))
    assert "The hop limit is now 12." not in again.content.decode()


def a_request(session=None):
    from apps.core.sessions import SessionStore

    request = RequestFactory().get("/")
    request.session = session if session is not None else SessionStore()
    return request


def test_the_storage_makes_its_backends_only_when_used():
    storage = LazyFallbackStorage(a_request())
    assert "storages" not in storage.__dict__
    assert list(storage) == []  # reading makes them
    assert [type(s).__name__ for s in storage.storages] == ["CookieStorage", "SessionStorage"]


@pytest.mark.parametrize("storage_class", [LazyFallbackStorage, FallbackStorage])
def test_a_message_too_big_for_the_cookie_falls_back_to_the_session(storage_class):
    from django.http import HttpResponse

    text = secrets.token_urlsafe(4000)  # over the cookie's size, compressed or not
    request = a_request()
    storage = storage_class(request)
    storage.add(20, text)
    storage.update(HttpResponse())
    assert "_messages" in request.session
