"""The origin check, authentication and connection caps in front of every websocket."""

import pytest

from apps.core.websocket import CLOSE_TOO_MANY
from tests.conftest import assert_closed_with, session_cookie_for, websocket
from tests.factories import MembershipFactory, token_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker_db_connections_closed"),
]


@pytest.fixture
def token(owner) -> str:
    return token_for(owner.user)


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000"]
)
async def test_a_foreign_origin_is_refused_before_the_handshake(thread, token, origin):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/", token=token, origin=origin)

    connected, _ = await communicator.connect()

    assert not connected


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://localhost:9999", "localhost:9999"),
        ("http://localhost", "localhost"),
        (None, "127.0.0.1:8000"),
        (None, None),
    ],
)
async def test_our_origins_and_no_origin_are_accepted_with_a_token(thread, token, origin, host):
    communicator = websocket(f"/ws/v1/threads/{thread.pk}/", token=token, origin=origin, host=host)

    connected, _ = await communicator.connect()

    assert connected
    await communicator.send_json_to({"type": "ping"})
    assert (await communicator.receive_json_from())["type"] == "pong"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("forwarded_proto", "connects"),
    [("https", {"https": True, "http": False}), ("http", {"https": False, "http": True})],
)
async def test_behind_a_tls_proxy_the_pages_origin_is_https(
    settings, thread, token, forwarded_proto, connects
):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proto = ((b"x-forwarded-proto", forwarded_proto.encode()),)
    for scheme, expected in connects.items():
        communicator = websocket(
            f"/ws/v1/threads/{thread.pk}/",
            token=token,
            origin=f"{scheme}://127.0.0.1:8000",
            headers=proto,
        )

        connected, _ = await communicator.connect()

        assert connected is expected, scheme
        await communicator.disconnect()


async def test_no_origin_still_needs_credentials(thread):
    await assert_closed_with(websocket(f"/ws/v1/threads/{thread.pk}/", origin=None), 4401)


async def test_an_unknown_route_is_closed_as_not_found(token):
    await assert_closed_with(websocket("/ws/nowhere/", token=token), 4404)


# -- caps and throttles ------------------------------------------------------------------------


async def open_sockets(path: str, count: int, **kwargs) -> list:
    sockets = []
    for _ in range(count):
        communicator = websocket(path, **kwargs)
        connected, _ = await communicator.connect()
        assert connected
        sockets.append(communicator)
    return sockets


async def assert_refused_as_too_many(communicator) -> None:
    await assert_closed_with(communicator, CLOSE_TOO_MANY)


@pytest.fixture
def owner_cookie(owner) -> str:
    return session_cookie_for(owner.user)


@pytest.fixture
def other_token(team) -> str:
    """The token of another member of the team."""
    return token_for(MembershipFactory(team=team).user)


async def test_a_user_gets_at_most_the_cap_of_open_sockets_and_more_once_one_closes(
    settings, thread, token, owner_cookie
):
    settings.OZWEB_WS_MAX_PER_USER = 3
    path = f"/ws/v1/threads/{thread.pk}/"
    # By token and by session cookie alike: the user is counted, not the credential.
    sockets = await open_sockets(path, 2, token=token)
    sockets += await open_sockets(path, 1, cookie=owner_cookie)

    await assert_refused_as_too_many(websocket(path, token=token))

    await sockets.pop().disconnect()
    sockets += await open_sockets(path, 1, token=token)
    await assert_refused_as_too_many(websocket(path, token=token))
    for communicator in sockets:
        await communicator.disconnect()
    sockets = await open_sockets(path, 3, token=token)  # all released on close: no leak
    for communicator in sockets:
        await communicator.disconnect()


async def test_the_user_cap_is_per_user(settings, thread, token, other_token):
    settings.OZWEB_WS_MAX_PER_USER = 1
    path = f"/ws/v1/threads/{thread.pk}/"
    mine = await open_sockets(path, 1, token=token)

    theirs = await open_sockets(path, 1, token=other_token)

    await assert_refused_as_too_many(websocket(path, token=token))
    for communicator in mine + theirs:
        await communicator.disconnect()


async def test_an_address_gets_at_most_the_cap_whoever_connects(
    settings, thread, token, other_token
):
    settings.OZWEB_WS_MAX_PER_ADDRESS = 2
    path = f"/ws/v1/threads/{thread.pk}/"
    here, elsewhere = ("10.1.2.3", 40000), ("10.9.9.9", 40000)
    sockets = await open_sockets(path, 1, token=token, client=here)
    # Anonymous connections count too (the consumer closes them with 4401 itself).
    anonymous = websocket(path, client=here)
    connected, _ = await anonymous.connect()
    assert connected

    await assert_refused_as_too_many(websocket(path, token=other_token, client=here))
    sockets += await open_sockets(path, 1, token=other_token, client=elsewhere)

    await anonymous.disconnect()
    sockets += await open_sockets(path, 1, token=other_token, client=here)
    for communicator in sockets:
        await communicator.disconnect()


async def test_behind_a_proxy_the_address_is_the_one_it_forwarded(settings, thread, token):
    settings.OZWEB_WS_MAX_PER_ADDRESS = 1
    settings.OZWEB_PROXY_COUNT = 1
    path = f"/ws/v1/threads/{thread.pk}/"
    proxy = ("10.0.0.1", 40000)

    def forwarded_for(value: bytes):
        return websocket(path, token=token, client=proxy, headers=((b"x-forwarded-for", value),))

    sockets = await open_sockets(path, 1, token=token, client=proxy)  # not forwarded: the peer
    first = forwarded_for(b"203.0.113.7")
    connected, _ = await first.connect()
    assert connected
    # What a client writes in X-Forwarded-For itself is to the left of what the proxy adds.
    await assert_refused_as_too_many(forwarded_for(b"198.51.100.1, 203.0.113.7"))
    other = forwarded_for(b"203.0.113.8")
    connected, _ = await other.connect()
    assert connected
    for communicator in [*sockets, first, other]:
        await communicator.disconnect()


async def test_bad_tokens_from_one_address_are_throttled(settings, thread, token):
    settings.OZWEB_THROTTLE_AUTH_FAILURES = "3/day"  # a window no test straddles
    path = f"/ws/v1/threads/{thread.pk}/"
    here = ("10.1.2.3", 40000)
    for _ in range(3):
        await assert_closed_with(websocket(path, token="not-a-token", client=here), 4401)

    await assert_refused_as_too_many(websocket(path, token="not-a-token", client=here))
    # Then any token from there, even a good one, until the window ends; elsewhere is fine.
    await assert_refused_as_too_many(websocket(path, token=token, client=here))
    [elsewhere] = await open_sockets(path, 1, token=token, client=("10.9.9.9", 40000))
    await elsewhere.disconnect()
