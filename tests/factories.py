from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token

from apps.agents.models import Agent, Harness
from apps.core.secretbox import token_hash
from apps.teams.models import Invitation, Membership, Role, Team
from apps.threads.models import Thread, ThreadKind


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save(update_fields=["password"])


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class InvitationFactory(factory.django.DjangoModelFactory):
    """A pending invitation (apps.teams.invitations.invitation_create when the test needs its
    link's secret)."""

    class Meta:
        model = Invitation

    team = factory.SubFactory(TeamFactory)
    invitee = factory.Sequence(lambda n: f"invitee{n}")
    role = Role.MEMBER
    token_hash = factory.Sequence(lambda n: token_hash(f"token-{n}"))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    team = factory.SubFactory(TeamFactory)
    handle = factory.Sequence(lambda n: f"agent{n}")
    display_name = factory.LazyAttribute(lambda a: a.handle.title())
    harness = Harness.CLAUDE


class ThreadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thread

    team = factory.SubFactory(TeamFactory)
    kind = ThreadKind.CHANNEL
    name = factory.Sequence(lambda n: f"thread-{n}")


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key
