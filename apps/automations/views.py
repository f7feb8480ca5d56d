"""Schedule and trigger pages: every member reads them (with the firing and call logs);
admins create, edit and remove. The selectors' NotFound and PermissionDenied are the 404 and
403 pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.automations import schedules, selectors, triggers
from apps.automations.forms import ScheduleForm, TriggerForm
from apps.automations.triggers import DEFAULT_TEMPLATES
from apps.core.forms import form_save
from apps.core.http import AuthenticatedHttpRequest
from apps.teams.models import Role
from apps.teams.selectors import access_team

LOG_ROWS = 100


@login_required
def schedule_list(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    return render(
        request,
        "automations/schedule_list.html",
        {
            "team": membership.team,
            "membership": membership,
            "schedules": selectors.schedule_list(team=membership.team),
        },
    )


@login_required
def schedule_new(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
    form = ScheduleForm(request.POST or None, team=membership.team)
    created = form_save(
        request, form, lambda: schedules.schedule_create(actor=membership, **form.service_fields())
    )
    if created is not None:
        messages.success(request, f"Schedule {created.value.pk} is set.")
        return redirect("schedule-detail", schedule_id=created.value.pk)
    return render(
        request,
        "automations/schedule_form.html",
        {"team": membership.team, "form": form, "schedule": None},
    )


@login_required
def schedule_detail(request: AuthenticatedHttpRequest, schedule_id: int) -> HttpResponse:
    membership, schedule = selectors.access_schedule(user=request.user, schedule_id=schedule_id)
    return render(
        request,
        "automations/schedule_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "schedule": schedule,
            "firings": selectors.firing_list(schedule=schedule)[:LOG_ROWS],
        },
    )


@login_required
def schedule_edit(request: AuthenticatedHttpRequest, schedule_id: int) -> HttpResponse:
    membership, schedule = selectors.access_schedule(
        user=request.user, schedule_id=schedule_id, role=Role.ADMIN
    )
    form = ScheduleForm(
        request.POST or None, team=membership.team, initial=ScheduleForm.initial_for(schedule)
    )
    if form_save(
        request,
        form,
        lambda: schedules.schedule_update(
            actor=membership, schedule=schedule, **form.service_fields()
        ),
    ):
        messages.success(request, f"Saved schedule {schedule.pk}.")
        return redirect("schedule-detail", schedule_id=schedule.pk)
    return render(
        request,
        "automations/schedule_form.html",
        {"team": membership.team, "form": form, "schedule": schedule},
    )


@login_required
@require_POST
def schedule_delete(request: AuthenticatedHttpRequest, schedule_id: int) -> HttpResponse:
    membership, schedule = selectors.access_schedule(
        user=request.user, schedule_id=schedule_id, role=Role.ADMIN
    )
    schedules.schedule_delete(actor=membership, schedule=schedule)
    messages.success(request, f"Removed schedule {schedule_id}.")
    return redirect("schedule-list", team_id=membership.team_id)


@login_required
def trigger_list(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    return render(
        request,
        "automations/trigger_list.html",
        {
            "team": membership.team,
            "membership": membership,
            "triggers": selectors.trigger_list(team=membership.team),
        },
    )


@login_required
def trigger_new(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
    form = TriggerForm(request.POST or None, team=membership.team)
    created = form_save(
        request, form, lambda: triggers.trigger_create(actor=membership, **form.service_fields())
    )
    if created is not None:
        issued = created.value
        # Shown on this answer only (no redirect): ozweb keeps neither in the clear.
        return render(
            request,
            "automations/trigger_created.html",
            {
                "team": membership.team,
                "trigger": issued.trigger,
                "url": request.build_absolute_uri(issued.path),
                "secret": issued.secret,
            },
            status=201,
        )
    return render(
        request,
        "automations/trigger_form.html",
        {"team": membership.team, "form": form, "trigger": None, "defaults": DEFAULT_TEMPLATES},
    )


@login_required
def trigger_detail(request: AuthenticatedHttpRequest, trigger_id: int) -> HttpResponse:
    membership, trigger = selectors.access_trigger(user=request.user, trigger_id=trigger_id)
    return render(
        request,
        "automations/trigger_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "trigger": trigger,
            "template": trigger.template or DEFAULT_TEMPLATES[trigger.kind],
            "calls": selectors.trigger_call_list(trigger=trigger).select_related("message")[
                :LOG_ROWS
            ],
        },
    )


@login_required
def trigger_edit(request: AuthenticatedHttpRequest, trigger_id: int) -> HttpResponse:
    membership, trigger = selectors.access_trigger(
        user=request.user, trigger_id=trigger_id, role=Role.ADMIN
    )
    form = TriggerForm(
        request.POST or None,
        team=membership.team,
        editing=True,
        initial=TriggerForm.initial_for(trigger),
    )
    if form_save(
        request,
        form,
        lambda: triggers.trigger_update(actor=membership, trigger=trigger, **form.service_fields()),
    ):
        messages.success(request, f"Saved trigger {trigger.pk}.")
        return redirect("trigger-detail", trigger_id=trigger.pk)
    return render(
        request,
        "automations/trigger_form.html",
        {"team": membership.team, "form": form, "trigger": trigger, "defaults": DEFAULT_TEMPLATES},
    )


@login_required
@require_POST
def trigger_delete(request: AuthenticatedHttpRequest, trigger_id: int) -> HttpResponse:
    membership, trigger = selectors.access_trigger(
        user=request.user, trigger_id=trigger_id, role=Role.ADMIN
    )
    triggers.trigger_delete(actor=membership, trigger=trigger)
    messages.success(request, f"Removed trigger {trigger_id}; its URL no longer answers.")
    return redirect("trigger-list", team_id=membership.team_id)
