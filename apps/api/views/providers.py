"""/teams/{id}/providers/, /providers/{id}/, /teams/{id}/usage/ and
/runs/{id}/budget/raise/: model providers, spend, and raising a budget that stopped a run."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.api.serializers_gateway import (
    BudgetRaiseInput,
    BudgetRaiseOutput,
    ProviderInput,
    ProviderOutput,
    TeamUsageOutput,
)
from apps.api.views.common import AuthenticatedRequest, paginate, validated
from apps.core.errors import ServiceError
from apps.gateway.selectors import GROUPS, TOKEN_FIELDS, UsageRow, team_usage
from apps.gateway.services import budget_raise_and_resume
from apps.providers import services
from apps.providers.selectors import access_provider, provider_list
from apps.runs.selectors import access_run
from apps.teams.selectors import access_team


class TeamProviderListApi(APIView):
    @extend_schema(responses=ProviderOutput(many=True))
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        return paginate(request, self, provider_list(team=membership.team), ProviderOutput)

    @extend_schema(request=ProviderInput, responses={201: ProviderOutput})
    def post(self, request: AuthenticatedRequest, team_id: int) -> Response:
        actor = access_team(user=request.user, team_id=team_id)
        data = validated(ProviderInput, request.data)
        provider = services.provider_create(actor=actor, **data)
        return Response(ProviderOutput(provider).data, status=status.HTTP_201_CREATED)


class ProviderDetailApi(APIView):
    @extend_schema(responses=ProviderOutput)
    def get(self, request: AuthenticatedRequest, provider_id: int) -> Response:
        _, provider = access_provider(user=request.user, provider_id=provider_id)
        return Response(ProviderOutput(provider).data)

    @extend_schema(request=ProviderInput(partial=True), responses=ProviderOutput)
    def patch(self, request: AuthenticatedRequest, provider_id: int) -> Response:
        actor, provider = access_provider(user=request.user, provider_id=provider_id)
        data = validated(ProviderInput, request.data, partial=True)
        provider = services.provider_update(actor=actor, provider=provider, **data)
        return Response(ProviderOutput(provider).data)

    @extend_schema(
        description="Agents that named it use the team's provider of their harness's kind "
        "(or their own key) from their next run; its usage records stay.",
        responses={204: None},
    )
    def delete(self, request: AuthenticatedRequest, provider_id: int) -> Response:
        actor, provider = access_provider(user=request.user, provider_id=provider_id)
        services.provider_delete(actor=actor, provider=provider)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _time_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(
            f"{name} is an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T10:00:00Z.",
            field=name,
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _total(rows: list[UsageRow]) -> dict[str, object]:
    total: dict[str, object] = {"key": "total", "agent": None}
    for name in (*TOKEN_FIELDS, "requests"):
        total[name] = sum(getattr(row, name) for row in rows)
    total["cost_usd"] = float(sum((row.cost_usd for row in rows), Decimal(0)))
    return total


class TeamUsageApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="From this time (ISO 8601, UTC)."),
            OpenApiParameter("until", str, description="Before this time (ISO 8601, UTC)."),
            OpenApiParameter("group_by", str, enum=list(GROUPS), description="day by default."),
        ],
        responses=TeamUsageOutput,
    )
    def get(self, request: AuthenticatedRequest, team_id: int) -> Response:
        membership = access_team(user=request.user, team_id=team_id)
        group_by = request.query_params.get("group_by") or "day"
        if group_by not in GROUPS:
            raise ServiceError(f"group_by must be one of {', '.join(GROUPS)}.", field="group_by")
        since, until = _time_param(request, "since"), _time_param(request, "until")
        rows = team_usage(team=membership.team, since=since, until=until, group_by=group_by)
        payload = {
            "group_by": group_by,
            "since": since,
            "until": until,
            "rows": [{**row.__dict__, "cost_usd": float(row.cost_usd)} for row in rows],
            "total": _total(rows),
        }
        return Response(TeamUsageOutput(payload).data)


class RunBudgetRaiseApi(APIView):
    @extend_schema(
        description="Raises the budget that stopped this run (admins and owners) and resumes "
        "it: a new run continues the agent's session in the same thread.",
        request=BudgetRaiseInput,
        responses={201: BudgetRaiseOutput},
    )
    def post(self, request: AuthenticatedRequest, run_id: int) -> Response:
        actor, run = access_run(user=request.user, run_id=run_id)
        data = validated(BudgetRaiseInput, request.data)
        stop = budget_raise_and_resume(actor=actor, run=run, value=data.get("value"))
        body = {"budget": stop.budget, "value": stop.raised_to, "run": stop.resumed_by_id}
        return Response(BudgetRaiseOutput(body).data, status=status.HTTP_201_CREATED)
