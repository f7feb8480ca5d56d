from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from apps.agents.models import Agent, Harness
from apps.teams.models import Membership, Role, Team
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
