from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agents.models import Agent
from apps.core.errors import NotFound, ServiceError
from apps.runs import selectors, services
from apps.runs.harnesses import capabilities_of
from apps.runs.models import Run
from apps.teams.models import Membership, Role
from apps.teams.views import membership_or_404


class RunForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False)


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), strip=False)


def _run_or_404(request: HttpRequest, run_id: int) -> tuple[Membership, Run]:
    try:
        run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    except NotFound:
        raise Http404 from None
    return membership_or_404(request, run.team_id), run


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    membership, run = _run_or_404(request, run_id)
    root, tree = selectors.run_tree(run=run)
    return render(
        request,
        "runs/run_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "run": run,
            "tree": tree if len(tree) > 1 else [],
            "capabilities": capabilities_of(run.harness),
            "events": selectors.run_events(run=run, limit=1000),
            "can_act": membership.has_role(Role.MEMBER),
            "reply_form": ReplyForm(),
        },
    )


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    membership, run = _run_or_404(request, run_id)
    try:
        services.run_request_cancel(actor=membership, run=run)
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.pk)


@login_required
@require_POST
def run_reply(request: HttpRequest, run_id: int) -> HttpResponse:
    membership, run = _run_or_404(request, run_id)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            services.run_send_message(actor=membership, run=run, body=form.cleaned_data["body"])
            messages.success(request, "Sent. It reaches the agent as soon as its harness allows.")
        except ServiceError as exc:
            messages.error(request, exc.message)
    return redirect("run-detail", run_id=run.pk)


@login_required
@require_POST
def agent_run(request: HttpRequest, agent_id: int) -> HttpResponse:
    agent = Agent.objects.filter(pk=agent_id, team__memberships__user=request.user).first()
    if agent is None:
        raise Http404
    membership = membership_or_404(request, agent.team_id)
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the agent something to do.")
        return redirect("agent-detail", agent_id=agent.pk)
    try:
        run = services.run_start(
            actor=membership, agent=agent, prompt=form.cleaned_data["prompt"], thread=None
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("agent-detail", agent_id=agent.pk)
    return redirect("run-detail", run_id=run.pk)


@login_required
@require_POST
def scenario(request: HttpRequest, team_id: int) -> HttpResponse:
    """Start the collaboration demo (offline agents) and open its thread."""
    from apps.runs.scenario import scenario_start

    membership = membership_or_404(request, team_id, Role.ADMIN)
    try:
        message = scenario_start(actor=membership)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard-team", team_id=team_id)
    return redirect("thread", thread_id=message.thread_id)


class ScenarioApi(APIView):
    """`POST /api/v1/teams/{id}/demo/`: start the collaboration demo (admins)."""

    class Input(serializers.Serializer):
        class Meta:
            ref_name = "ScenarioInput"

        harness = serializers.ChoiceField(choices=["offline", "models"], default="offline")
        secrets = serializers.DictField(
            child=serializers.CharField(), required=False, write_only=True
        )

    @extend_schema(
        request=Input,
        responses={
            201: inline_serializer(
                "ScenarioStarted",
                {"thread": serializers.IntegerField(), "message": serializers.IntegerField()},
            )
        },
    )
    def post(self, request: Request, team_id: int) -> Response:
        from apps.runs.scenario import scenario_start
        from apps.teams.selectors import membership_get

        actor = membership_get(user=request.user, team_id=team_id)
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = scenario_start(
            actor=actor, harness=data["harness"], secrets=data.get("secrets") or None
        )
        return Response({"thread": message.thread_id, "message": message.pk}, status=201)
