"""Events leave through the channel layer only once the writing transaction has committed."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.agents.models import AgentStatus
from apps.agents.services import agent_set_status
from apps.threads import services
from apps.threads.events import team_group, thread_group, thread_html_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def listen():
    """Subscribe a fresh channel to a group; returns a function draining what arrived."""
    layer = get_channel_layer()

    def subscribe(group: str):
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channel)

        def drain() -> list[dict]:
            received = []
            while True:
                queue = layer.channels.get(channel)
                if not queue:
                    return received
                received.append(async_to_sync(layer.receive)(channel))

        return drain

    return subscribe


def test_nothing_is_broadcast_before_commit(
    owner, thread, listen, django_capture_on_commit_callbacks
):
    feed = listen(thread_group(thread.pk))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.message_post(actor=owner, thread=thread, body="hello")

    assert feed() == []
    # One send, after commit, to the thread's API clients, its browsers and the team's dashboard.
    assert len(callbacks) == 1
    callbacks[0]()
    [event] = feed()
    assert [m["json"]["body"] for m in event["messages"]] == ["hello"]


def test_after_commit_a_batch_is_one_event_with_every_message(
    owner, thread, listen, django_capture_on_commit_callbacks
):
    feed = listen(thread_group(thread.pk))
    page = listen(thread_html_group(thread.pk))
    dashboard = listen(team_group(thread.team_id))
    items = [services.NewMessage(body=f"line {n}", author_user=owner.user) for n in range(3)]

    with django_capture_on_commit_callbacks(execute=True):
        services.messages_append(thread=thread, items=items)

    [event] = feed()
    assert event["type"] == "feed.messages"
    assert [m["seq"] for m in event["messages"]] == [1, 2, 3]
    assert [m["json"]["body"] for m in event["messages"]] == ["line 0", "line 1", "line 2"]
    [html] = page()
    assert [m["seq"] for m in html["messages"]] == [1, 2, 3]
    assert 'id="msg-' in html["messages"][0]["html"]
    [activity] = dashboard()
    assert (activity["type"], activity["last_seq"]) == ("team.activity", 3)


def test_a_rolled_back_post_broadcasts_nothing(
    owner, thread, agent, listen, django_capture_on_commit_callbacks
):
    feed = listen(thread_group(thread.pk))

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(Exception, match="@nobody"),
    ):
        services.message_post(actor=owner, thread=thread, body="@nobody hi")

    assert feed() == []


def test_message_event_carries_the_deliveries(
    owner, thread, agent, listen, django_capture_on_commit_callbacks
):
    feed = listen(thread_group(thread.pk))

    with django_capture_on_commit_callbacks(execute=True):
        services.message_post(actor=owner, thread=thread, body="@coder go")

    event = feed()[0]  # what runs do with the delivery afterwards is theirs to test
    assert event["messages"][0]["json"]["body"] == "@coder go"
    [delivery] = event["messages"][0]["json"]["deliveries"]
    assert (delivery["handle"], delivery["state"]) == ("coder", "pending")


def test_agent_status_change_reaches_the_team(agent, listen, django_capture_on_commit_callbacks):
    dashboard = listen(team_group(agent.team_id))

    with django_capture_on_commit_callbacks(execute=True):
        agent_set_status(agent=agent, status=AgentStatus.RUNNING)
        agent_set_status(agent=agent, status=AgentStatus.RUNNING)

    [event] = dashboard()
    assert event["type"] == "team.agent"
    assert event["agent"]["status"] == "running"
    assert f'id="agent-{agent.pk}"' in event["html"]


def test_nothing_is_rendered_for_a_group_nobody_is_in(
    owner, thread, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.threads import events

    rendered = []
    monkeypatch.setattr(events, "message_html", lambda m: rendered.append(m) or "")

    with django_capture_on_commit_callbacks(execute=True):
        services.message_post(actor=owner, thread=thread, body="nobody is watching")

    assert rendered == []
