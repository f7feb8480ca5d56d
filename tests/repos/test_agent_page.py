"""An agent's repository on its form and its page."""

from __future__ import annotations

import pytest

from apps.agents.models import Agent
from apps.repos.services import repo_create
from tests.agents.test_views import FORM

pytestmark = pytest.mark.django_db


def test_the_agent_form_sets_the_repository_and_the_page_shows_it(web, team, repo, other_team):
    form = {**FORM, "network": "ozweb", "repo": str(repo.pk)}
    response = web.post(f"/teams/{team.pk}/agents/new/", form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    agent = Agent.objects.get(handle="builder")
    assert agent.repo == repo
    page = web.get(f"/agents/{agent.pk}/").content.decode()
    assert "<code>calc</code>" in page and "ozweb/builder/" in page
    edit = web.get(f"/agents/{agent.pk}/edit/").content.decode()
    assert f'<option value="{repo.pk}" selected>calc</option>' in edit

    theirs = repo_create(actor=other_team["owner"], name="secret")
    refused = web.post(f"/agents/{agent.pk}/edit/", {**form, "repo": str(theirs.pk)})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert '<option value="' + str(theirs.pk) + '"' not in refused.content.decode()
    agent.refresh_from_db()
    assert agent.repo == repo

    cleared = web.post(f"/agents/{agent.pk}/edit/", {**form, "repo": ""})
    assert cleared.status_code == 302
    agent.refresh_from_db()
    assert agent.repo is None
