"""python manage.py create_api_user <username> --team <name>: a user with an API token."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rest_framework.authtoken.models import Token

from apps.core.errors import ServiceError
from apps.teams import services
from apps.teams.models import Membership, Role, Team


class Command(BaseCommand):
    help = "Create (or reuse) a user, put them in a team, and print their API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--team", required=True, help="Team name; created if missing.")
        parser.add_argument("--email", default="")
        parser.add_argument("--role", choices=Role.values, default=Role.ADMIN)

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        username, team_name = options["username"].strip(), options["team"].strip()
        if not username:
            raise CommandError("The username cannot be empty.")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": options["email"]}
        )
        if created:
            user.set_password(secrets.token_urlsafe(24))
            user.save(update_fields=["password"])
        team = Team.objects.filter(name__iexact=team_name).first()
        try:
            if team is None:
                team = services.team_create(name=team_name, owner=user)
            else:
                Membership.objects.get_or_create(
                    team=team, user=user, defaults={"role": options["role"]}
                )
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
