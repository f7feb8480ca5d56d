"""Ids from outside are 1 to 2^63 − 1: every route with an id in its path, HTML and API, is a
404 past that (never a 500), and so is a websocket to such a path (closed with 4404)."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.core.ids import MAX_ID, IdConverter, bounded_int, is_id
from tests.conftest import assert_closed_with, session_cookie_for, web_client_for, websocket

TOO_BIG = str(MAX_ID + 1)
# What the other path parameters get: any value their converter takes.
OTHER_PARAMETERS = {"path": "k", "str": "whoami", "slug": "x"}


def id_routes() -> list[str]:
    """Every URL of the project with an `<id:...>` in its path, as a route string."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and "<id:" in route:
                found.append(route)

    walk(get_resolver().url_patterns, "/")
    return sorted(set(found))


def path_with(route: str, value: str) -> str:
    def fill(match: re.Match) -> str:
        converter = match.group(1)
        return value if converter == "id" else OTHER_PARAMETERS[converter]

    return re.sub(r"<(\w+):\w+>", fill, route)


def test_the_converter_takes_ids_only():
    converter = IdConverter()

    assert converter.to_python("1") == 1
    assert converter.to_python(str(MAX_ID)) == MAX_ID
    for value in ("0", TOO_BIG, "9" * 19):
        with pytest.raises(ValueError):
            converter.to_python(value)
    assert re.fullmatch(converter.regex, "9" * 20) is None


def test_bounded_int_and_is_id():
    assert bounded_int("42") == 42
    assert bounded_int("0", low=0) == 0
    for text in (None, "", "0", "-1", TOO_BIG, "1e3", " 1", "²", "١٢", "1_000"):
        assert bounded_int(text) is None, text
    assert is_id(1) and is_id(MAX_ID)
    assert not any(is_id(v) for v in (0, -1, MAX_ID + 1, True, "1", 1.0, None))


def test_every_id_route_is_found():
    routes = id_routes()

    assert "/teams/<id:team_id>/" in routes
    assert "/api/v1/teams/<id:team_id>/threads/" in routes
    assert "/api/v1/artifacts/<id:artifact_id>/versions/<id:version>/download/" in routes
    assert not [r for r in routes if "<int:" in r]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", TOO_BIG, "99999999999999999999", str(MAX_ID)])
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_route_answers_404_for_an_id_out_of_range_or_unknown(owner, method, value):
    client = web_client_for(owner.user)
    client.raise_request_exception = False  # a 500 is an answer to see, not an exception

    answers = {}
    for route in id_routes():
        answers[route] = getattr(client, method)(path_with(route, value)).status_code

    # Out of range no route matches; the largest id matches and names no row (or the view
    # takes another method, which it says first).
    expected = {404, 405} if value == str(MAX_ID) else {404}
    assert {route: status for route, status in answers.items() if status not in expected} == {}


@pytest.mark.django_db
def test_the_reported_urls(owner, api):
    web = web_client_for(owner.user)

    assert api.get(f"/api/v1/teams/{TOO_BIG}/").status_code == 404
    assert api.post(f"/api/v1/teams/{TOO_BIG}/threads/", {"name": "x"}).status_code == 404
    assert api.post(f"/api/v1/teams/{TOO_BIG}/members/", {"who": "bob"}).status_code == 404
    assert web.get(f"/teams/{TOO_BIG}/").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker_db_connections_closed")
@pytest.mark.parametrize(
    "path",
    [
        f"/ws/threads/{TOO_BIG}/",
        f"/ws/v1/threads/{TOO_BIG}/",
        f"/ws/teams/{TOO_BIG}/",
        f"/ws/runs/{TOO_BIG}/",
        "/ws/runs/0/",
        f"/ws/teams/{MAX_ID}/",
        "/ws/no-such-route/",
    ],
)
async def test_a_websocket_to_an_id_out_of_range_or_an_unknown_path_closes_with_4404(
    owner_cookie, path
):
    await assert_closed_with(websocket(path, cookie=owner_cookie), 4404)


@pytest.fixture
def owner_cookie(owner) -> str:
    return session_cookie_for(owner.user)
