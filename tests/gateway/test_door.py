"""The gateway door in-process (ozweb.asgi.router) against the real scripted model server on
127.0.0.1: key swap, streaming unchanged, usage recorded, refusals in the provider's shape."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from apps.gateway.models import BudgetStop, RunUsage, UsageRecord
from apps.gateway.selectors import run_usage
from apps.runs.models import Run, RunStatus
from apps.threads.models import Message
from ozweb.asgi import router
from tests.factories import AgentFactory, MembershipFactory
from tests.gateway.conftest import PROVIDER_KEY, active_run, gateway_request, make_provider
from tests.support.model_server import ANTHROPIC, GEMINI, RESPONSES, Reply, anthropic_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

MESSAGES = json.dumps(
    {"model": "claude-fake", "stream": True, "max_tokens": 100,
     "messages": [{"role": "user", "content": "hi"}]}
).encode()  # fmt: skip


def sync(fn):
    """`fn` on a thread that closes its database connection after (PostgreSQL then drops the
    test database at once)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(call, thread_sensitive=False)


async def test_claude_request_goes_upstream_with_the_real_key_and_streams_back_unchanged(
    owner, thread, claude_agent, model_server
):
    provider = await sync(make_provider)(owner, base_url=model_server.url)
    run, token = await sync(active_run)(claude_agent, thread)
    model_server.queue(Reply.final_text("Hello there from the model"))

    answer = await gateway_request(
        router,
        f"/gateway/{provider.pk}/v1/messages",
        query="beta=true",
        body=MESSAGES,
        headers={"x-api-key": token, "content-type": "application/json",
                 "anthropic-version": "2023-06-01"},
    )  # fmt: skip

    assert answer.status == 200
    assert answer.headers["content-type"] == "text/event-stream"
    (seen,) = model_server.main_requests(ANTHROPIC)
    assert seen.header("x-api-key") == PROVIDER_KEY
    assert token not in json.dumps(seen.headers)
    assert seen.path == "/v1/messages?beta=true"
    assert seen.header("anthropic-version") == "2023-06-01"
    assert seen.body["messages"] == [{"role": "user", "content": "hi"}]
    # The same events the server wrote, in order (ids differ per answer: compare the types).
    expected = b"".join(anthropic_events(seen.body, seen.reply))
    types = [line for line in answer.body.split(b"\n") if line.startswith(b"event:")]
    assert types == [line for line in expected.split(b"\n") if line.startswith(b"event:")]
    assert b"Hello" in answer.body
    usage = await sync(run_usage)(run_id=run.pk)
    assert usage == {
        "input_tokens": 30,
        "output_tokens": 12,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "requests": 1,
        "cost_usd": 0.0,
    }
    record = await sync(UsageRecord.objects.get)(run=run)
    assert record.model == "claude-fake" and record.status == 200


async def test_cost_comes_from_the_providers_prices(owner, thread, claude_agent, model_server):
    prices = {"claude-fake": {"input": 3, "output": 15}}
    provider = await sync(make_provider)(owner, base_url=model_server.url, prices=prices)
    run, token = await sync(active_run)(claude_agent, thread)

    await gateway_request(
        router, f"/gateway/{provider.pk}/v1/messages", body=MESSAGES, headers={"x-api-key": token}
    )

    usage = await sync(run_usage)(run_id=run.pk)
    assert usage["cost_usd"] == pytest.approx((30 * 3 + 12 * 15) / 1e6)


async def test_codex_responses_and_chat_completions_usage(owner, team, thread, model_server):
    provider = await sync(make_provider)(owner, kind="openai", base_url=model_server.openai_url)
    agent = await sync(AgentFactory)(team=team, handle="codex", harness="codex", model="gpt-fake")
    run, token = await sync(active_run)(agent, thread)
    auth = {"authorization": f"Bearer {token}"}

    responses = json.dumps({"model": "gpt-fake", "stream": True, "input": "hi"}).encode()
    answer = await gateway_request(
        router, f"/gateway/{provider.pk}/responses", body=responses, headers=auth
    )
    chat = json.dumps(
        {"model": "gpt-fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    chat_answer = await gateway_request(
        router, f"/gateway/{provider.pk}/chat/completions", body=chat, headers=auth
    )

    assert answer.status == 200 and b"response.completed" in answer.body
    assert chat_answer.status == 200 and chat_answer.body.endswith(b"data: [DONE]\n\n")
    seen = [r for r in model_server.requests if r.main]
    assert [r.route for r in seen] == ["/v1/responses", "/v1/chat/completions"]
    assert all(r.header("authorization") == f"Bearer {PROVIDER_KEY}" for r in seen)
    # The usage chunk was asked for, so the stream reports it.
    assert seen[1].body["stream_options"] == {"include_usage": True}
    usage = await sync(run_usage)(run_id=run.pk)
    assert (usage["input_tokens"], usage["output_tokens"], usage["requests"]) == (60, 24, 2)


async def test_gemini_takes_the_token_from_the_key_parameter_too(owner, team, thread, model_server):
    provider = await sync(make_provider)(owner, kind="gemini", base_url=model_server.url)
    agent = await sync(AgentFactory)(team=team, handle="gem", harness="gemini", model="gemini-x")
    run, token = await sync(active_run)(agent, thread)
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()

    answer = await gateway_request(
        router,
        f"/gateway/{provider.pk}/v1beta/models/gemini-x:streamGenerateContent",
        query=f"alt=sse&key={token}",
        body=body,
    )

    assert answer.status == 200
    (seen,) = model_server.main_requests(GEMINI)
    assert seen.path == "/v1beta/models/gemini-x:streamGenerateContent?alt=sse"
    assert seen.header("x-goog-api-key") == PROVIDER_KEY
    usage = await sync(run_usage)(run_id=run.pk)
    assert (usage["input_tokens"], usage["output_tokens"]) == (30, 12)
    assert (await sync(UsageRecord.objects.get)(run=run)).model == "gemini-x"


async def test_a_token_of_an_ended_run_is_401(owner, thread, claude_agent, model_server):
    provider = await sync(make_provider)(owner, base_url=model_server.url)
    run, token = await sync(active_run)(claude_agent, thread)
    await sync(Run.objects.filter(pk=run.pk).update)(
        status=RunStatus.SUCCEEDED, finished_at=timezone.now()
    )

    answer = await gateway_request(
        router, f"/gateway/{provider.pk}/v1/messages", body=MESSAGES, headers={"x-api-key": token}
    )
    missing = await gateway_request(router, f"/gateway/{provider.pk}/v1/messages", body=MESSAGES)

    assert answer.status == 401
    assert answer.json()["type"] == "error"
    assert "ended" in answer.json()["error"]["message"]
    assert missing.status == 401
    assert model_server.requests == []


async def test_another_teams_provider_is_404(owner, thread, claude_agent, model_server):
    other_owner = await sync(MembershipFactory)(role="owner")
    theirs = await sync(make_provider)(other_owner, base_url=model_server.url)
    await sync(make_provider)(owner, base_url=model_server.url)
    _, token = await sync(active_run)(claude_agent, thread)

    answer = await gateway_request(
        router, f"/gateway/{theirs.pk}/v1/messages", body=MESSAGES, headers={"x-api-key": token}
    )

    assert answer.status == 404
    assert model_server.requests == []


async def test_a_provider_that_is_not_the_runs_is_404(owner, thread, claude_agent, model_server):
    await sync(make_provider)(owner, base_url=model_server.url)
    gemini = await sync(make_provider)(owner, kind="gemini", base_url=model_server.url)
    _, token = await sync(active_run)(claude_agent, thread)

    answer = await gateway_request(
        router, f"/gateway/{gemini.pk}/v1/messages", body=MESSAGES, headers={"x-api-key": token}
    )

    assert answer.status == 404
    assert model_server.requests == []


async def test_a_base_url_that_does_not_answer_is_a_clear_502(owner, thread, claude_agent):
    from tests.e2e.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    provider = await sync(make_provider)(owner, base_url=dead)
    run, token = await sync(active_run)(claude_agent, thread)

    answer = await gateway_request(
        router, f"/gateway/{provider.pk}/v1/messages", body=MESSAGES, headers={"x-api-key": token}
    )

    assert answer.status == 502
    message = answer.json()["error"]["message"]
    assert f"at {dead} did not answer" in message and "ConnectError" in message
    assert (await sync(UsageRecord.objects.get)(run=run)).status == 0


async def test_a_spent_token_budget_refuses_the_next_request_in_the_providers_shape(
    owner, thread, claude_agent, model_server
):
    provider = await sync(make_provider)(owner, base_url=model_server.url)
    claude_agent.budget_run_tokens = 30
    await sync(claude_agent.save)()
    run, token = await sync(active_run)(claude_agent, thread)
    path, headers = f"/gateway/{provider.pk}/v1/messages", {"x-api-key": token}

    first = await gateway_request(router, path, body=MESSAGES, headers=headers)
    second = await gateway_request(router, path, body=MESSAGES, headers=headers)

    assert first.status == 200
    assert second.status == 400
    assert second.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "ozweb budget budget_run_tokens=30 spent: 42 tokens",
        },
    }
    assert len(model_server.requests) == 1
    stop = await sync(BudgetStop.objects.get)(run=run)
    assert stop.budget == "budget_run_tokens"
    run = await sync(Run.objects.get)(pk=run.pk)
    assert run.error == "ozweb budget budget_run_tokens=30 spent: 42 tokens"
    status = await sync(
        lambda: Message.objects.filter(thread=thread, data__budget_stop__run=run.pk).count()
    )()
    assert status == 1


async def test_a_delegated_runs_cost_counts_against_its_leads_run_budget(
    owner, team, thread, claude_agent, model_server
):
    prices = {"claude-fake": {"input": 1000, "output": 1000}}  # $0.042 per answer
    provider = await sync(make_provider)(owner, base_url=model_server.url, prices=prices)
    lead = await sync(AgentFactory)(team=team, handle="lead", harness="claude",
                                    budget_run_usd="0.05")  # fmt: skip
    lead_run, lead_token = await sync(active_run)(lead, thread)
    worker_run, worker_token = await sync(active_run)(claude_agent, thread, parent=lead_run)
    path = f"/gateway/{provider.pk}/v1/messages"

    first = await gateway_request(router, path, body=MESSAGES, headers={"x-api-key": worker_token})
    second = await gateway_request(router, path, body=MESSAGES, headers={"x-api-key": lead_token})
    third = await gateway_request(router, path, body=MESSAGES, headers={"x-api-key": worker_token})

    assert (first.status, second.status, third.status) == (200, 200, 400)
    message = third.json()["error"]["message"]
    assert message.startswith("ozweb budget budget_run_usd=0.05 spent: $0.0840")
    assert f"by run {lead_run.pk} of @lead" in message
    tree = await sync(RunUsage.objects.get)(run_id=lead_run.pk)
    assert float(tree.cost_usd) == pytest.approx(0.042)
    assert float(tree.tree_cost_usd) == pytest.approx(0.084)


async def test_the_scripted_error_of_the_provider_passes_through(
    owner, thread, claude_agent, model_server
):
    provider = await sync(make_provider)(owner, base_url=model_server.url)
    _, token = await sync(active_run)(claude_agent, thread)
    model_server.queue(Reply.http_error(429, "slow down"))

    answer = await gateway_request(
        router, f"/gateway/{provider.pk}/v1/messages", body=MESSAGES, headers={"x-api-key": token}
    )

    assert answer.status == 429
    assert answer.json()["error"]["message"] == "slow down"
    assert RESPONSES  # the protocols module is the server's
