"""Login lockout (django-axes, apps.core.login_lockout): per username and per address, 429 with
Retry-After, a cool-off that doubles with each attempt while locked out, on /login/ and
/admin/login/ alike, through Django's sync and async (daphne's) request paths."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessAttemptExpiration
from django.test import AsyncClient, Client
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"


@pytest.fixture(autouse=True)
def lockout_settings(settings) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    settings.OZWEB_LOGIN_COOLOFF_SECONDS = 300
    settings.OZWEB_LOGIN_COOLOFF_MAX_SECONDS = 3600


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", is_staff=True, is_superuser=True)


def log_in(username: str, password: str, *, address: str, path: str = "/login/"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def assert_locked_out(response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response["Retry-After"] == str(retry_after)
    assert b"Too many failed logins" in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_a_username_is_locked_out_after_the_limit_from_any_address(alice):
    for n in (1, 2):
        assert log_in("alice", "wrong", address=f"10.0.0.{n}").status_code == 200

    assert_locked_out(log_in("alice", "wrong", address="10.0.0.3"), 300)
    # Even the right password, from an address that never failed: refused, not checked.
    assert_locked_out(log_in("alice", PASSWORD, address="10.0.0.4"), 600)
    # Someone else logs in as usual.
    UserFactory(username="bob")
    assert log_in("bob", PASSWORD, address="10.0.0.4").status_code == 302


def test_an_address_is_locked_out_after_the_limit_whatever_the_usernames(alice):
    for name in ("root", "admin"):
        assert log_in(name, "guess", address="10.0.0.9").status_code == 200

    assert_locked_out(log_in("oracle", "guess", address="10.0.0.9"), 300)
    assert_locked_out(log_in("alice", PASSWORD, address="10.0.0.9"), 600)
    assert log_in("alice", PASSWORD, address="10.0.0.10").status_code == 302


def test_each_attempt_while_locked_out_doubles_the_cool_off_up_to_the_maximum(alice):
    answers = [log_in("alice", "wrong", address="10.0.0.1") for _ in range(8)]

    assert [r.status_code for r in answers] == [200, 200] + [429] * 6
    assert [r.get("Retry-After") for r in answers[2:]] == [
        "300",
        "600",
        "1200",
        "2400",
        "3600",
        "3600",
    ]


def test_once_the_cool_off_has_passed_logins_work_again(alice):
    for _ in range(3):
        log_in("alice", "wrong", address="10.0.0.1")
    assert log_in("alice", PASSWORD, address="10.0.0.1").status_code == 429
    long_ago = timezone.now() - timedelta(seconds=1200)
    AccessAttempt.objects.update(attempt_time=long_ago)
    AccessAttemptExpiration.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert log_in("alice", PASSWORD, address="10.0.0.1").status_code == 302


def test_the_admin_login_counts_and_is_locked_out_too(alice):
    admin_login = "/admin/login/?next=/admin/"
    for _ in range(2):
        response = log_in("alice", "wrong", address="10.0.0.1", path=admin_login)
        assert response.status_code == 200

    # Failures on either page count together.
    assert_locked_out(log_in("alice", "wrong", address="10.0.0.2"), 300)
    assert_locked_out(log_in("alice", PASSWORD, address="10.0.0.3", path=admin_login), 600)


@pytest.mark.django_db(transaction=True)  # the handler's threads see the user
async def test_under_asgi_the_lockout_is_the_same_429(alice):
    client = AsyncClient(REMOTE_ADDR="10.0.0.1")
    for _ in range(2):
        response = await client.post("/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 200

    response = await client.post("/login/", {"username": "alice", "password": "wrong"})

    assert response.status_code == 429
    assert response["Retry-After"] == "300"
    assert b"Try again in 5 minutes" in response.content
