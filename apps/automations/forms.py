"""The schedule and trigger forms of the HTML pages; the services validate the rest."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.agents.models import Agent
from apps.automations.models import Schedule, Trigger, TriggerKind
from apps.teams.models import Team
from apps.threads.models import Thread, ThreadKind


def _agents(team: Team) -> Any:
    return Agent.objects.active().filter(team=team).order_by("handle")


def _channels(team: Team) -> Any:
    return Thread.objects.filter(team=team, kind=ThreadKind.CHANNEL).order_by("name")


class ScheduleForm(forms.Form):
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), to_field_name="pk")
    cron = forms.CharField(
        max_length=100,
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 0 9 * * 1-5 "
        "(weekdays at nine).",
    )
    timezone = forms.CharField(
        max_length=64, initial="UTC", help_text="IANA name, e.g. Europe/Paris."
    )
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=32 * 1024,
        help_text="Posted in the thread, mentioning the agent, at each firing.",
    )
    thread = forms.ModelChoiceField(
        queryset=Thread.objects.none(),
        required=False,
        empty_label="The agent's direct thread",
        help_text="Or a channel.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = _agents(team)  # type: ignore[attr-defined]
        self.fields["thread"].queryset = _channels(team)  # type: ignore[attr-defined]

    @staticmethod
    def initial_for(schedule: Schedule) -> dict[str, Any]:
        return {
            "agent": schedule.agent_id,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "prompt": schedule.prompt,
            "thread": schedule.thread_id if schedule.thread.kind == ThreadKind.CHANNEL else None,
            "enabled": schedule.enabled,
        }

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "agent": data["agent"],
            "cron": data["cron"],
            "timezone_name": data["timezone"].strip(),
            "prompt": data["prompt"],
            "thread": data["thread"],
            "enabled": data["enabled"],
        }


class TriggerForm(forms.Form):
    kind = forms.ChoiceField(choices=TriggerKind.choices, initial=TriggerKind.GENERIC)
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.none(),
        required=False,
        empty_label="(GitHub only) any agent the issue mentions",
        help_text="Generic: the agent addressed. GitHub: the one agent it may hand issues to.",
    )
    thread = forms.ModelChoiceField(
        queryset=Thread.objects.none(),
        required=False,
        empty_label="The agent's direct thread",
        help_text="Where calls post.",
    )
    template = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
        max_length=16 * 1024,
        help_text="A Django template; the JSON body is payload, e.g. {{ payload.issue.title }}. "
        "Blank: the kind's default.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, team: Team, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = _agents(team)  # type: ignore[attr-defined]
        self.fields["thread"].queryset = _channels(team)  # type: ignore[attr-defined]
        if editing:
            del self.fields["kind"]  # a trigger's kind stays

    @staticmethod
    def initial_for(trigger: Trigger) -> dict[str, Any]:
        return {
            "agent": trigger.agent_id,
            "thread": trigger.thread_id if trigger.thread.kind == ThreadKind.CHANNEL else None,
            "template": trigger.template,
            "enabled": trigger.enabled,
        }

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        fields = {
            "agent": data["agent"],
            "thread": data["thread"],
            "template": data["template"],
            "enabled": data["enabled"],
        }
        if "kind" in data:
            fields["kind"] = data["kind"]
        return fields
