"""Input and output shapes of schedules and triggers (apps.api.views.automations)."""

from __future__ import annotations

from rest_framework import serializers

from apps.automations.models import FiringStatus, TriggerKind
from apps.core.ids import id_field
from apps.core.patterns import NOT_BLANK

# Five space-separated fields; croniter checks what each one says.
CRON_FIELDS = r"^\s*[0-9A-Za-z*,/?#-]+(\s+[0-9A-Za-z*,/?#-]+){4}\s*$"
TIMEZONE_HELP = "An IANA time zone the cron is read in (default UTC), e.g. Europe/Paris."


class ScheduleInput(serializers.Serializer):
    class Meta:
        ref_name = "ScheduleInput"

    agent = id_field()
    cron = serializers.RegexField(
        CRON_FIELDS,
        max_length=100,
        help_text='Five fields: minute hour day month weekday ("0 9 * * 1-5").',
        error_messages={"invalid": "A cron expression is five fields (minute hour day month "
                        "weekday)."},
    )  # fmt: skip
    prompt = serializers.RegexField(
        NOT_BLANK,
        trim_whitespace=False,
        max_length=32 * 1024,
        error_messages={"invalid": "A schedule needs a prompt."},
    )
    thread = id_field(
        required=False,
        allow_null=True,
        help_text="A channel, or the agent's direct thread (the default).",
    )
    timezone = serializers.CharField(max_length=64, default="UTC", help_text=TIMEZONE_HELP)
    enabled = serializers.BooleanField(default=True)


class ScheduleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    agent = serializers.IntegerField(source="agent_id")
    agent_handle = serializers.CharField(source="agent.handle")
    cron = serializers.CharField()
    prompt = serializers.CharField()
    thread = serializers.IntegerField(source="thread_id")
    timezone = serializers.CharField()
    enabled = serializers.BooleanField()
    next_run_at = serializers.DateTimeField(allow_null=True)
    last_fired_at = serializers.DateTimeField(allow_null=True)
    last_run = serializers.IntegerField(source="last_run_id", allow_null=True)
    created_at = serializers.DateTimeField()


class ScheduleFiringOutput(serializers.Serializer):
    id = serializers.IntegerField()
    schedule = serializers.IntegerField(source="schedule_id")
    due_at = serializers.DateTimeField()
    fired_at = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=FiringStatus.choices,
        help_text="skipped: the run of the previous firing was still going (see reason).",
    )
    reason = serializers.CharField()
    message = serializers.IntegerField(source="message_id", allow_null=True)
    run = serializers.IntegerField(source="run_id", allow_null=True)


class TriggerInput(serializers.Serializer):
    class Meta:
        ref_name = "TriggerInput"

    kind = serializers.ChoiceField(choices=TriggerKind.choices, default=TriggerKind.GENERIC)
    agent = id_field(
        required=False,
        allow_null=True,
        help_text="generic: the agent addressed (required). github: the one agent it may hand "
        "issues to (null: any agent of the team that the text mentions).",
    )
    thread = id_field(
        required=False,
        allow_null=True,
        help_text="Where calls post (default: the agent's direct thread).",
    )
    template = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=16 * 1024,
        default="",
        help_text="A Django template; the JSON body is `payload` (e.g. "
        "`{{ payload.issue.title }}`). Blank: the kind's default.",
    )
    enabled = serializers.BooleanField(default=True)


class TriggerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    kind = serializers.ChoiceField(choices=TriggerKind.choices)
    agent = serializers.IntegerField(source="agent_id", allow_null=True)
    thread = serializers.IntegerField(source="thread_id")
    template = serializers.CharField()
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class TriggerCreatedOutput(TriggerOutput):
    """A new trigger, with its URL (whose token is the credential) and, for github, the
    signing secret: both shown only in this answer."""

    url = serializers.CharField(help_text="`<ozweb URL>/hooks/<secret token>/`: POST here.")
    secret = serializers.CharField(
        allow_null=True, help_text="github: the secret to give GitHub (X-Hub-Signature-256)."
    )


class TriggerCallOutput(serializers.Serializer):
    id = serializers.IntegerField()
    trigger = serializers.IntegerField(source="trigger_id")
    received_at = serializers.DateTimeField()
    status_code = serializers.IntegerField()
    event = serializers.CharField()
    summary = serializers.CharField()
    message = serializers.IntegerField(source="message_id", allow_null=True)
