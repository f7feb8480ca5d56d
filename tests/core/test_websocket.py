"""The origin check and authentication in front of every websocket."""

import pytest

from apps.core.websocket import origin_allowed
from tests.conftest import assert_closed_with, websocket
from tests.factories import token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://127.0.0.1:8000", True),
        ("http://localhost", True),
        ("https://localhost:8443", True),
        ("http://[::1]:8000", True),
        ("http://evil.example", False),
        ("http://localhost.evil.example", False),
        ("null", False),
        ("file://localhost", False),
        ("", False),
    ],
)
def test_origin_allowed_names_our_hosts(origin, allowed):
    assert origin_allowed(origin) is allowed


def test_csrf_trusted_origins_are_allowed(settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://ozweb.example.org"]

    assert origin_allowed("https://ozweb.example.org")
    assert not origin_allowed("http://ozweb.example.org")


@pytest.fixture
def token(owner) -> str:
    return token_for(owner.user)


@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
async def test_a_foreign_origin_is_refused_before_the_handshake(thread, token, origin):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/", token=token, origin=origin)

    connected, _ = await communicator.connect()

    assert not connected


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://localhost", None])
async def test_our_origins_and_no_origin_are_accepted_with_a_token(thread, token, origin):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/", token=token, origin=origin)

    connected, _ = await communicator.connect()

    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


async def test_no_origin_still_needs_credentials(thread):
    await assert_closed_with(websocket(f"/ws/v1/threads/{thread.pk}/", origin=None), 4401)


async def test_an_unknown_route_is_refused(token):
    communicator = websocket("/ws/nowhere/", token=token)

    with pytest.raises(ValueError, match="No route found"):
        await communicator.connect()
