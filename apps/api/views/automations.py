"""/teams/{id}/schedules/, /schedules/{id}/ (+ firings), /teams/{id}/triggers/ and
/triggers/{id}/ (+ calls). Reading is for every member; writing for admins."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents.selectors import agent_get
from apps.api.serializers_automations import (
    ScheduleFiringOutput,
    ScheduleInput,
    ScheduleOutput,
    TriggerCallOutput,
    TriggerCreatedOutput,
    TriggerInput,
    TriggerOutput,
)
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.automations import schedules, selectors, triggers
from apps.core.errors import ServiceError
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team
from apps.threads.selectors import thread_get


def _resolve(actor: Membership, data: dict[str, Any]) -> dict[str, Any]:
    """Ids in the input as the team's rows (another team's id is a 400 naming the field)."""
    resolved = dict(data)
    for name, get in (("agent", agent_get), ("thread", thread_get)):
        if resolved.get(name) is None:
            continue
        try:
            resolved[name] = get(team=actor.team, **{f"{name}_id": resolved[name]})
        except ServiceError:
            raise ServiceError(f"No such {name} in this team.", field=name) from None
    return resolved


class ScheduleListApi(APIView):
    @extend_schema(responses=ScheduleOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(
            request, self, selectors.schedule_list(team=membership.team), ScheduleOutput
        )

    @extend_schema(request=ScheduleInput, responses={201: ScheduleOutput})
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
        data = _resolve(actor, validated(ScheduleInput, request.data))
        schedule = schedules.schedule_create(
            actor=actor,
            agent=data["agent"],
            cron=data["cron"],
            prompt=data["prompt"],
            thread=data.get("thread"),
            timezone_name=data["timezone"],
            enabled=data["enabled"],
        )
        return Response(ScheduleOutput(schedule).data, status=status.HTTP_201_CREATED)


class ScheduleDetailApi(APIView):
    @extend_schema(responses=ScheduleOutput)
    def get(self, request: AuthenticatedRequest, schedule_id: int) -> Response:
        _, schedule = selectors.access_schedule(user=request.user, schedule_id=schedule_id)
        return Response(ScheduleOutput(schedule).data)

    @extend_schema(request=ScheduleInput(partial=True), responses=ScheduleOutput)
    def patch(self, request: AuthenticatedRequest, schedule_id: int) -> Response:
        actor, schedule = selectors.access_schedule(
            user=request.user, schedule_id=schedule_id, role=Role.ADMIN
        )
        data = _resolve(actor, validated(ScheduleInput, request.data, partial=True))
        if "timezone" in data:
            data["timezone_name"] = data.pop("timezone")
        schedule = schedules.schedule_update(actor=actor, schedule=schedule, **data)
        return Response(ScheduleOutput(schedule).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, schedule_id: int) -> Response:
        actor, schedule = selectors.access_schedule(
            user=request.user, schedule_id=schedule_id, role=Role.ADMIN
        )
        schedules.schedule_delete(actor=actor, schedule=schedule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScheduleFiringListApi(APIView):
    @extend_schema(
        responses=ScheduleFiringOutput(many=True),
        description="The schedule's firings, newest first: fired, skipped (the previous "
        "firing's run was still going) or failed, each with its reason.",
    )
    def get(self, request: AuthenticatedRequest, schedule_id: int) -> Response:
        _, schedule = selectors.access_schedule(user=request.user, schedule_id=schedule_id)
        return paginate(
            request, self, selectors.firing_list(schedule=schedule), ScheduleFiringOutput
        )


class TriggerListApi(APIView):
    @extend_schema(responses=TriggerOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(request, self, selectors.trigger_list(team=membership.team), TriggerOutput)

    @extend_schema(
        request=TriggerInput,
        responses={201: TriggerCreatedOutput},
        description="The answer holds the trigger's `url` and, for github, its `secret`: "
        "they are shown only here (ozweb keeps the token's hash and the secret encrypted).",
    )
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
        data = _resolve(actor, validated(TriggerInput, request.data))
        issued = triggers.trigger_create(
            actor=actor,
            kind=data["kind"],
            agent=data.get("agent"),
            thread=data.get("thread"),
            template=data["template"],
            enabled=data["enabled"],
        )
        body = {
            **TriggerOutput(issued.trigger).data,
            "url": request.build_absolute_uri(issued.path),
            "secret": issued.secret,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class TriggerDetailApi(APIView):
    @extend_schema(responses=TriggerOutput)
    def get(self, request: AuthenticatedRequest, trigger_id: int) -> Response:
        _, trigger = selectors.access_trigger(user=request.user, trigger_id=trigger_id)
        return Response(TriggerOutput(trigger).data)

    @extend_schema(request=TriggerInput(partial=True), responses=TriggerOutput)
    def patch(self, request: AuthenticatedRequest, trigger_id: int) -> Response:
        actor, trigger = selectors.access_trigger(
            user=request.user, trigger_id=trigger_id, role=Role.ADMIN
        )
        data = _resolve(actor, validated(TriggerInput, request.data, partial=True))
        if "kind" in data and data.pop("kind") != trigger.kind:
            raise ServiceError("A trigger's kind cannot change; make a new one.", field="kind")
        trigger = triggers.trigger_update(actor=actor, trigger=trigger, **data)
        return Response(TriggerOutput(trigger).data)

    @extend_schema(responses={204: None})
    def delete(self, request: AuthenticatedRequest, trigger_id: int) -> Response:
        actor, trigger = selectors.access_trigger(
            user=request.user, trigger_id=trigger_id, role=Role.ADMIN
        )
        triggers.trigger_delete(actor=actor, trigger=trigger)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TriggerCallListApi(APIView):
    @extend_schema(responses=TriggerCallOutput(many=True), description="Every call, newest first.")
    def get(self, request: AuthenticatedRequest, trigger_id: int) -> Response:
        _, trigger = selectors.access_trigger(user=request.user, trigger_id=trigger_id)
        return paginate(
            request, self, selectors.trigger_call_list(trigger=trigger), TriggerCallOutput
        )
