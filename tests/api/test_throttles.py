"""The REST API's throttles: refused tokens per address (before DRF's throttles, which a failed
authentication never reaches), and rates per user and per anonymous address; 429 with
Retry-After. Rates are per day here, so that no test straddles two windows."""

import pytest
from rest_framework.test import APIClient

from apps.core.throttling import Rate
from tests.conftest import api_client_for, session_api_client_for
from tests.factories import MembershipFactory, token_for

pytestmark = pytest.mark.django_db

HERE, ELSEWHERE = "10.1.2.3", "10.9.9.9"


def client_at(address: str, token: str | None = None) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def assert_throttled(response) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 86400
    assert response.json()["code"] == "throttled"


def test_bad_tokens_from_one_address_meet_429_after_the_limit(settings, owner):
    # The default count, in a day-long window.
    limit = Rate.parse(settings.OZWEB_THROTTLE_AUTH_FAILURES).count
    settings.OZWEB_THROTTLE_AUTH_FAILURES = f"{limit}/day"
    for n in range(limit):
        response = client_at(HERE, f"guess-{n}").get("/api/v1/teams/")
        assert response.status_code == 401 and "Retry-After" not in response

    assert_throttled(client_at(HERE, "guess-again").get("/api/v1/teams/"))
    # Any token from there, until the window ends; the same token from elsewhere works.
    good = token_for(owner.user)
    assert_throttled(client_at(HERE, good).get("/api/v1/teams/"))
    assert client_at(ELSEWHERE, good).get("/api/v1/teams/").status_code == 200
    # Requests without a token are not guesses: the session still works from there.
    session = session_api_client_for(owner.user)
    assert session.get("/api/v1/teams/", REMOTE_ADDR=HERE).status_code == 200


def test_behind_a_proxy_the_forwarded_address_is_counted(settings):
    settings.OZWEB_THROTTLE_AUTH_FAILURES = "2/day"
    settings.OZWEB_PROXY_COUNT = 1
    proxy = "10.0.0.1"

    def guess(forwarded_for: str):
        client = client_at(proxy, "guess")
        return client.get("/api/v1/teams/", HTTP_X_FORWARDED_FOR=forwarded_for)

    assert guess("203.0.113.7").status_code == 401
    assert guess("198.51.100.1, 203.0.113.7").status_code == 401  # the client's own part
    assert_throttled(guess("203.0.113.7"))
    assert guess("203.0.113.8").status_code == 401


def test_each_user_has_a_rate_whatever_the_credentials(settings, owner, team):
    settings.OZWEB_THROTTLE_USER = "3/day"
    by_token, by_session = api_client_for(owner.user), session_api_client_for(owner.user)
    for client in (by_token, by_session, by_token):
        assert client.get("/api/v1/teams/").status_code == 200

    assert_throttled(by_session.get("/api/v1/teams/"))
    other = api_client_for(MembershipFactory(team=team).user)
    assert other.get("/api/v1/teams/").status_code == 200


def test_anonymous_requests_have_a_rate_per_address(settings):
    settings.OZWEB_THROTTLE_ANON = "2/day"
    for _ in range(2):
        assert client_at(HERE).get("/api/v1/docs/").status_code == 200

    throttled = client_at(HERE).get("/api/v1/docs/")  # an HTML page: no JSON body
    assert throttled.status_code == 429 and 1 <= int(throttled["Retry-After"]) <= 86400
    assert client_at(ELSEWHERE).get("/api/v1/docs/").status_code == 200
