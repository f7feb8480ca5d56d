"""An agent's network setting and egress allowlist at every door (service, REST, form, page),
and where a hardening problem shows (/healthz, the dashboard)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.agents.egress import MAX_EGRESS_DOMAINS, clean_egress_domains, domain_allowed
from apps.agents.models import Agent
from tests.conftest import web_client_for

pytestmark = pytest.mark.django_db


def test_egress_domains_are_normalized_and_bounded():
    assert clean_egress_domains(["PyPI.org.", "*.npmjs.org", "pypi.org"]) == [
        "pypi.org",
        "*.npmjs.org",
    ]
    assert clean_egress_domains("files.pythonhosted.org\n*.github.com, x.io") == [
        "files.pythonhosted.org",
        "*.github.com",
        "x.io",
    ]
    for bad in (["https://pypi.org"], ["pypi.org:443"], ["10.0.0.1"], ["-a.org"], ["a..org"],
                ["*"], ["*.*.org"], ["a" * 64 + ".org"], [7], "x" * 300):  # fmt: skip
        with pytest.raises(ValidationError):
            clean_egress_domains(bad)
    with pytest.raises(ValidationError, match=f"At most {MAX_EGRESS_DOMAINS}"):
        clean_egress_domains([f"h{i}.org" for i in range(MAX_EGRESS_DOMAINS + 1)])


def test_a_wildcard_admits_subdomains_only():
    domains = ["pypi.org", "*.npmjs.org"]
    assert domain_allowed("PYPI.org.", domains)
    assert domain_allowed("registry.npmjs.org", domains)
    assert not domain_allowed("npmjs.org", domains)
    assert not domain_allowed("evilpypi.org", domains)
    assert not domain_allowed("pypi.org.evil.com", domains)
    assert not domain_allowed("registry.npmjs.org.evil.com", domains)


def test_the_api_takes_and_shows_network_and_egress_domains(api, team):
    created = api.post(
        f"/api/v1/teams/{team.pk}/agents/",
        {"handle": "fetcher", "network": "egress", "egress_domains": ["PyPI.org"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert (created.json()["network"], created.json()["egress_domains"]) == ("egress", ["pypi.org"])
    agent_id = created.json()["id"]
    for bad, field in (
        ({"network": "internet"}, "network"),
        ({"egress_domains": ["not a host"]}, "egress_domains"),
        ({"egress_domains": [f"h{i}.org" for i in range(51)]}, "egress_domains"),
    ):
        response = api.patch(f"/api/v1/agents/{agent_id}/", bad, format="json")
        assert response.status_code == 400, bad
        assert field in response.json()["errors"], response.json()
    assert Agent.objects.get(pk=agent_id).egress_domains == ["pypi.org"]
    default = api.post(f"/api/v1/teams/{team.pk}/agents/", {"handle": "plain"}, format="json")
    assert (default.json()["network"], default.json()["egress_domains"]) == ("ozweb", [])


def test_the_agent_form_and_page(web, team, agent):
    page = web.get(f"/agents/{agent.pk}/").content.decode()
    assert "ozweb only" in page
    form = web.get(f"/agents/{agent.pk}/edit/").content.decode()
    assert 'name="network"' in form and 'name="egress_domains"' in form
    fields = {
        "handle": agent.handle, "display_name": "Coder", "harness": agent.harness, "model": "",
        "instructions": "", "command": "", "image": agent.image, "setup_commands": "",
        "environment": "", "secrets": "", "run_timeout_seconds": "1800",
        "max_concurrent_runs": "1", "approval_policy": "never", "approval_timeout_s": "600",
    }  # fmt: skip
    bad = web.post(
        f"/agents/{agent.pk}/edit/",
        {**fields, "network": "egress", "egress_domains": "pypi.org\nhttp://x"},
    )
    assert bad.status_code == 200 and "is not a host name" in bad.content.decode()
    saved = web.post(
        f"/agents/{agent.pk}/edit/",
        {**fields, "network": "egress", "egress_domains": "pypi.org\n*.npmjs.org\n"},
    )
    assert saved.status_code == 302
    agent.refresh_from_db()
    assert (agent.network, agent.egress_domains) == ("egress", ["pypi.org", "*.npmjs.org"])
    page = web.get(f"/agents/{agent.pk}/").content.decode()
    assert "ozweb and HTTPS to" in page and "<code>*.npmjs.org</code>" in page


@pytest.fixture
def hardening(monkeypatch):
    """The sandbox_hardening check answering `problems` (the engine is asked elsewhere)."""
    from apps.runs import sandboxes

    def set_problems(problems: list[str]) -> None:
        result = {"ok": not problems, "problems": problems, "notes": []}
        monkeypatch.setattr(sandboxes, "_hardening_cache", (0.0, result))
        monkeypatch.setattr(sandboxes, "HARDENING_CACHE_SECONDS", float("inf"))

    return set_problems


def test_a_hardening_problem_shows_in_healthz_and_on_the_dashboard_for_admins(
    client, hardening, team, owner, member
):
    hardening(["the engine can not enforce the pids limit: runs fail to start"])
    report = client.get("/healthz").json()
    assert report["sandbox_hardening"]["ok"] is False
    assert report["sandbox_hardening"]["problems"] == [
        "the engine can not enforce the pids limit: runs fail to start"
    ]
    assert report["ok"] is True  # reported, it does not take the web node out
    dashboard = web_client_for(owner.user).get(f"/teams/{team.pk}/").content.decode()
    assert "Sandbox hardening:" in dashboard and "can not enforce the pids limit" in dashboard
    as_member = web_client_for(member.user).get(f"/teams/{team.pk}/").content.decode()
    assert "Sandbox hardening:" not in as_member

    hardening([])
    assert client.get("/healthz").json()["sandbox_hardening"]["ok"] is True
    assert (
        "Sandbox hardening:"
        not in web_client_for(owner.user).get(f"/teams/{team.pk}/").content.decode()
    )


@pytest.mark.docker
def test_the_hardening_check_asks_the_engine(monkeypatch, harness_image):
    from apps.runs import sandboxes

    monkeypatch.setattr(sandboxes, "_hardening_cache", None)
    monkeypatch.delenv("OZWEB_SANDBOX_NETWORK", raising=False)
    result = sandboxes.hardening_health()
    assert result == {"ok": True, "problems": [], "notes": result["notes"]}
    monkeypatch.setattr(sandboxes, "_hardening_cache", None)
    monkeypatch.setenv("OZWEB_SANDBOX_NETWORK", "host")
    problems = sandboxes.hardening_health()["problems"]
    assert problems == [
        "OZWEB_SANDBOX_NETWORK=host: containers join that network instead of reaching ozweb alone"
    ]
