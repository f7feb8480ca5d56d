"""Usage records read back (run usage in the API, the team's usage endpoint, the pages) and
"raise the budget and resume"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template.defaultfilters import floatformat

from apps.gateway.budgets import budget_check
from apps.gateway.metering import Usage
from apps.gateway.models import BudgetStop
from apps.gateway.services import budget_stop, usage_record
from apps.runs.models import Run
from tests.conftest import api_client_for, web_client_for
from tests.factories import AgentFactory
from tests.gateway.conftest import active_run, make_provider

pytestmark = pytest.mark.django_db

PRICES = {"m-1": {"input": 1000, "output": 2000, "cache_read": 100, "cache_write": 1250}}


def record(run, provider, *, model="m-1", tokens=(10, 5, 2, 1)):
    inp, out, read, write = tokens
    usage = Usage(inp, out, read, write, model=model, reported=True)
    return usage_record(
        run=run, provider=provider, path="/v1/messages", status=200, usage=usage,
        ttfb_ms=3, latency_ms=9,
    )  # fmt: skip


@pytest.fixture
def provider(owner):
    return make_provider(owner, base_url="http://127.0.0.1:9", prices=PRICES)


def test_a_runs_usage_in_the_api_is_the_gateways_with_the_harness_report_beside(
    api, team, thread, claude_agent, provider
):
    run, _ = active_run(claude_agent, thread)
    Run.objects.filter(pk=run.pk).update(usage={"input_tokens": 999, "cost_usd": 1.0})
    record(run, provider)
    record(run, provider, tokens=(20, 10, 0, 0))

    usage = api.get(f"/api/v1/runs/{run.pk}/").json()["usage"]

    cost = (30 * 1000 + 15 * 2000 + 2 * 100 + 1 * 1250) / 1e6
    assert usage == {
        "input_tokens": 30,
        "output_tokens": 15,
        "cache_read_input_tokens": 2,
        "cache_creation_input_tokens": 1,
        "requests": 2,
        "cost_usd": pytest.approx(cost),
        "reported": {"input_tokens": 999, "cost_usd": 1.0},
    }
    listed = api.get(f"/api/v1/runs/?agent={claude_agent.pk}").json()["results"][0]
    assert listed["usage"]["requests"] == 2


def test_the_teams_usage_by_agent_day_and_model(api, team, thread, claude_agent, provider):
    other = AgentFactory(team=team, handle="other", harness="claude")
    run, _ = active_run(claude_agent, thread)
    other_run, _ = active_run(other, thread)
    record(run, provider)
    record(other_run, provider, model="m-2")

    by_agent = api.get(f"/api/v1/teams/{team.pk}/usage/?group_by=agent").json()
    by_model = api.get(f"/api/v1/teams/{team.pk}/usage/?group_by=model").json()
    by_day = api.get(f"/api/v1/teams/{team.pk}/usage/").json()
    future = api.get(f"/api/v1/teams/{team.pk}/usage/?since=2999-01-01").json()

    assert [(r["key"], r["requests"]) for r in by_agent["rows"]] == [("claude", 1), ("other", 1)]
    assert [r["key"] for r in by_model["rows"]] == ["m-1", "m-2"]
    assert by_model["rows"][1]["cost_usd"] == 0.0  # no price for m-2
    assert len(by_day["rows"]) == 1 and by_day["total"]["requests"] == 2
    assert future["rows"] == [] and future["total"]["requests"] == 0
    assert api.get(f"/api/v1/teams/{team.pk}/usage/?group_by=week").status_code == 400
    assert api.get(f"/api/v1/teams/{team.pk}/usage/?since=yesterday").status_code == 400


def test_day_and_team_budgets(team, thread, claude_agent, provider):
    run, _ = active_run(claude_agent, thread)
    record(run, provider)  # $0.02145
    assert budget_check(run=Run.objects.select_related("agent", "team").get(pk=run.pk)) is None

    claude_agent.budget_day_usd = Decimal("0.02")
    claude_agent.save()
    spent = budget_check(run=Run.objects.select_related("agent", "team").get(pk=run.pk))
    assert spent is not None and spent.budget == "budget_day_usd"
    assert spent.message.startswith("ozweb budget budget_day_usd=0.02 spent: $0.021")

    claude_agent.budget_day_usd = None
    claude_agent.save()
    team.budget_month_usd = Decimal("0.01")
    team.save()
    spent = budget_check(run=Run.objects.select_related("agent", "team").get(pk=run.pk))
    assert spent is not None and spent.budget == "team.budget_month_usd"
    assert "ozweb budget team budget_month_usd=0.01 spent: $0.021" in spent.message


def stopped_run(thread, agent, provider):
    agent.budget_run_tokens = 10
    agent.save()
    run, _ = active_run(agent, thread)
    record(run, provider)
    spent = budget_check(run=Run.objects.select_related("agent", "team").get(pk=run.pk))
    assert spent is not None
    budget_stop(run=run, spent=spent)
    Run.objects.filter(pk=run.pk).update(status="failed")
    return Run.objects.get(pk=run.pk)


def test_raise_the_budget_and_resume_over_the_api(
    api, team, thread, claude_agent, provider, member
):
    run = stopped_run(thread, claude_agent, provider)
    path = f"/api/v1/runs/{run.pk}/budget/raise/"

    assert api_client_for(member.user).post(path, {}, format="json").status_code == 403
    assert api.post(path, {"value": 5}, format="json").status_code == 400  # not above 15 spent
    response = api.post(path, {"value": 100}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["budget"] == "budget_run_tokens" and body["value"] == 100
    claude_agent.refresh_from_db()
    assert claude_agent.budget_run_tokens == 100
    resumed = Run.objects.get(pk=body["run"])
    assert resumed.status == "queued" and resumed.thread_id == thread.pk
    assert api.post(path, {}, format="json").status_code == 409
    assert BudgetStop.objects.get(run=run).resumed_by_id == resumed.pk


def test_the_pages_show_usage_spend_and_the_raise_action(
    owner, team, thread, claude_agent, provider, member
):
    run = stopped_run(thread, claude_agent, provider)
    web = web_client_for(owner.user)

    thread_page = web.get(f"/threads/{thread.pk}/").content.decode()
    assert "ozweb budget budget_run_tokens=10 spent: 15 tokens" in thread_page
    assert f'hx-post="/runs/{run.pk}/budget/raise/"' in thread_page
    run_page = web.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="usage-run-' in run_page and "$0.0" in run_page
    assert "Raise the budget and resume" in run_page
    assert "Model usage" in web.get(f"/agents/{claude_agent.pk}/").content.decode()
    assert 'class="spend-chart"' in web.get(f"/teams/{team.pk}/").content.decode()
    usage_page = web.get(f"/teams/{team.pk}/usage/").content.decode()
    assert "@claude" in usage_page and "m-1" in usage_page
    assert "<script" not in usage_page.split("</head>", 1)[1]

    response = web.post(f"/runs/{run.pk}/budget/raise/", {"value": ""})
    assert response.status_code == 302
    claude_agent.refresh_from_db()
    assert claude_agent.budget_run_tokens == 30  # twice what was spent
    assert web_client_for(member.user).get(f"/teams/{team.pk}/providers/").status_code == 403


def test_the_providers_page_adds_edits_and_deletes(owner, team):
    web = web_client_for(owner.user)
    form = {
        "name": "main",
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key": "sk-secret-page",
        "prices": '{"gpt-x": {"input": 1, "output": 2}}',
    }

    assert web.post(f"/teams/{team.pk}/providers/", form).status_code == 302
    page = web.get(f"/teams/{team.pk}/providers/").content.decode()
    assert "main" in page and "sk-secret-page" not in page
    provider = team.providers.get()
    assert provider.prices == {"gpt-x": {"input": 1.0, "output": 2.0}}

    edit = web.get(f"/providers/{provider.pk}/edit/").content.decode()
    assert "sk-secret-page" not in edit and "gpt-x" in edit
    form.update(api_key="", prices="", name="renamed")
    assert web.post(f"/providers/{provider.pk}/edit/", form).status_code == 302
    provider.refresh_from_db()
    assert provider.name == "renamed" and provider.prices == {}
    from apps.providers.services import provider_api_key

    assert provider_api_key(provider) == "sk-secret-page"  # kept
    bad = web.post(f"/teams/{team.pk}/providers/", {**form, "name": "x", "kind": "mistral"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    assert web.post(f"/providers/{provider.pk}/delete/").status_code == 302
    assert not team.providers.exists()


def test_admins_set_the_teams_budgets_on_the_spend_page_and_members_only_read_them(
    team, thread, claude_agent, provider, admin, member, other_team
):
    run, _ = active_run(claude_agent, thread)
    cost = record(run, provider).cost_usd
    page = f"/teams/{team.pk}/usage/"
    web = web_client_for(admin.user)
    shown = web.get(page).content.decode()
    assert "(no daily limit)" in shown and "(no monthly limit)" in shown
    assert 'name="budget_day_usd"' in shown

    saved = web.post(page, {"budget_day_usd": "2.5", "budget_month_usd": ""}, follow=True)

    team.refresh_from_db()
    assert (team.budget_day_usd, team.budget_month_usd) == (Decimal("2.5"), None)
    html = saved.content.decode()
    assert "The team&#x27;s budgets are saved." in html and "of $2.5000" in html
    spent = floatformat(cost, 4)  # as the page rounds (half up)
    assert f"Today: <b>${spent}</b>" in html and f"this month: <b>${spent}</b>" in html

    wrong = web.post(page, {"budget_day_usd": "-1", "budget_month_usd": "x"}).content.decode()
    assert wrong.count('class="error"') == 2
    team.refresh_from_db()
    assert team.budget_day_usd == Decimal("2.5")  # nothing changed

    reader = web_client_for(member.user)
    assert 'name="budget_day_usd"' not in reader.get(page).content.decode()
    refused = reader.post(page, {"budget_day_usd": "999"}).content.decode()
    assert "Only owners and admins can set the team" in refused
    team.refresh_from_db()
    assert team.budget_day_usd == Decimal("2.5")
    spy = web_client_for(other_team["owner"].user)
    assert spy.post(page, {"budget_day_usd": "0"}).status_code == 404
