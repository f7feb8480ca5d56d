from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

from apps.core.registry import register_team_setup

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from apps.teams.models import Team


def create_general_channel(*, team: Team, owner: User) -> None:
    """A team setup step (apps.core.registry): every new team starts with #general."""
    from apps.threads.services import thread_create_channel  # apps.py loads before models

    thread_create_channel(team=team, name="general", created_by=owner)


class ThreadsConfig(AppConfig):
    name = "apps.threads"
    label = "threads"

    def ready(self) -> None:
        register_team_setup(create_general_channel)
