"""Output serializers. Message and agent shapes are shared with the websocket payloads."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.agents.egress import MAX_EGRESS_DOMAINS
from apps.agents.models import Agent, ApprovalPolicy, Harness, NetworkPolicy
from apps.agents.services import ENV_NAME_RE, MAX_ENV_VALUE
from apps.api.serializers_gateway import AgentGatewayInput, RunUsageOutput, run_usage_payload
from apps.artifacts.models import Artifact, ArtifactVersion, MemoryNote
from apps.artifacts.selectors import artifact_version_get
from apps.core.errors import NotFound
from apps.core.ids import id_field
from apps.core.patterns import SHELL_WORDS
from apps.teams.models import Invitation, InvitationStatus, Membership, Team
from apps.threads.events import message_payload
from apps.threads.models import Thread


class TeamOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = [
            "id", "name", "slug", "hop_limit", "role", "created_at",
            "budget_day_usd", "budget_month_usd",
        ]  # fmt: skip

    def get_role(self, team: Team) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(team.pk)


class MemberOutput(serializers.ModelSerializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    email = serializers.CharField(source="user.email")

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "email", "role", "created_at"]


class InvitationOutput(serializers.ModelSerializer):
    """An invitation, as its team's admins and its invitee see it: never whether a user by the
    invitee's name exists, nor their email."""

    team_name = serializers.CharField(source="team.name")
    invited_by = serializers.CharField(
        source="invited_by.username", allow_null=True, help_text="The inviter's username."
    )
    status = serializers.ChoiceField(
        source="current_status",
        choices=InvitationStatus.choices,
        help_text="pending until answered or revoked; expired once past expires_at.",
    )

    class Meta:
        model = Invitation
        fields = [
            "id", "team", "team_name", "invitee", "role", "status", "invited_by", "expires_at",
            "created_at", "closed_at",
        ]  # fmt: skip


class InvitationSentOutput(serializers.Serializer):
    """The answer to an invitation, the same whether or not a user by that name exists."""

    invitation = InvitationOutput()
    accept_url = serializers.URLField(
        help_text="The invitation link (shown this once): it opens the invitation for the "
        "invitee, signed in, and for no one else."
    )


class AgentOutput(serializers.ModelSerializer):
    secret_names = serializers.SerializerMethodField(
        help_text="Names of the agent's secrets. Values are write-only and never returned."
    )
    archived = serializers.BooleanField(
        source="is_archived",
        read_only=True,
        help_text="Deleted: kept as history, out of the lists, takes no more work.",
    )

    class Meta:
        model = Agent
        fields = [
            "id", "team", "handle", "display_name", "harness", "model", "instructions",
            "command", "image", "setup_commands", "environment", "secret_names",
            "run_timeout_seconds", "max_concurrent_runs", "status", "created_at", "updated_at",
            "archived", "archived_at", "archived_by",
            "approval_policy", "approval_timeout_s",
            "network", "egress_domains",
            "provider", "budget_run_tokens", "budget_run_usd", "budget_day_usd",
            "repo",
        ]  # fmt: skip

    def get_secret_names(self, agent: Agent) -> list[str]:
        return [s.name for s in agent.secrets.all()]


# As apps.agents.services cleans a handle: @ and surrounding space dropped, lowercased.
HANDLE_INPUT = r"^\s*@*[A-Za-z0-9\u212a][A-Za-z0-9\u212a_-]{0,39}\s*$"


@extend_schema_field(
    {
        "type": "object",
        "propertyNames": {"pattern": ENV_NAME_RE.pattern},
        "additionalProperties": {"type": ["string", "null"], "maxLength": MAX_ENV_VALUE},
    }
)
class EnvironmentField(serializers.DictField):
    """NAME: value pairs, NAME an environment variable's name."""

    child = serializers.CharField(allow_blank=True, allow_null=True, max_length=MAX_ENV_VALUE)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            for name in data:
                if not ENV_NAME_RE.match(name):
                    raise serializers.ValidationError(
                        f"“{name}” is not a valid environment variable name."
                    )
        return super().to_internal_value(data)


class AgentInput(AgentGatewayInput):  # + provider and budgets (the gateway)
    handle = serializers.RegexField(
        HANDLE_INPUT,
        max_length=41,
        trim_whitespace=False,
        error_messages={
            "invalid": "A handle is 1–40 lowercase letters, digits, - or _, starting with a "
            "letter or digit."
        },
    )
    display_name = serializers.CharField(max_length=80, required=False, allow_blank=True)
    harness = serializers.ChoiceField(choices=Harness.choices, required=False)
    model = serializers.CharField(max_length=120, required=False, allow_blank=True)
    instructions = serializers.CharField(required=False, allow_blank=True, max_length=100_000)
    command = serializers.RegexField(
        SHELL_WORDS,
        max_length=500,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        error_messages={"invalid": "The command does not parse as shell words."},
    )
    image = serializers.CharField(max_length=200, required=False)
    setup_commands = serializers.ListField(child=serializers.CharField(), required=False)
    environment = EnvironmentField(required=False)
    secrets = EnvironmentField(
        required=False,
        write_only=True,
        help_text="NAME: value. Stored encrypted, never returned. null or '' removes one.",
    )
    run_timeout_seconds = serializers.IntegerField(
        min_value=10, max_value=7 * 24 * 3600, required=False
    )
    max_concurrent_runs = serializers.IntegerField(min_value=1, max_value=50, required=False)
    approval_policy = serializers.ChoiceField(
        choices=ApprovalPolicy.choices,
        required=False,
        help_text="never (the default), ask, or ask_writes (reads run, commands and edits "
        "ask). Only harnesses that can ask (claude, codex) take ask and ask_writes.",
    )
    approval_timeout_s = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, required=False,
        help_text="No answer to an approval by then denies the call (shown as expired).",
    )  # fmt: skip
    network = serializers.ChoiceField(
        choices=NetworkPolicy.choices,
        required=False,
        help_text="What the run's container reaches: ozweb (the default: ozweb's agent API "
        "and gateway, nothing else) or egress (also HTTPS to egress_domains, through a "
        "logging allowlist proxy).",
    )
    egress_domains = serializers.ListField(
        child=serializers.CharField(max_length=255),
        max_length=MAX_EGRESS_DOMAINS,
        required=False,
        help_text='Host names ("pypi.org") or "*.example.org" for its subdomains; used when '
        "network is egress.",
    )
    repo = id_field(
        required=False,
        allow_null=True,
        help_text="The team repository its runs work in (a branch per run, changes to review); "
        "null for none.",
    )


class ThreadOutput(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]  # DRF pops declared fields off the class
    unread = serializers.IntegerField(
        read_only=True, help_text="Messages the requesting user has not read yet."
    )

    class Meta:
        model = Thread
        fields = [
            "id", "team", "kind", "name", "label", "topic", "agent", "last_seq",
            "last_message_at", "unread", "created_at",
        ]  # fmt: skip


class DeliveryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    agent = serializers.IntegerField()
    handle = serializers.CharField()
    state = serializers.CharField()
    reason = serializers.CharField()
    run = serializers.IntegerField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)


class AuthorOutput(serializers.Serializer):
    type = serializers.ChoiceField(choices=["user", "agent", "system"])
    id = serializers.IntegerField(allow_null=True)
    handle = serializers.CharField()
    name = serializers.CharField()


class MessageOutput(serializers.Serializer):
    """The same shape as `message` in the websocket's `message.created` frames."""

    id = serializers.IntegerField()
    thread = serializers.IntegerField()
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    body = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]  # DRF pops declared fields off the class
    author = AuthorOutput()
    run = serializers.IntegerField(allow_null=True, help_text="The run that produced it.")
    created_at = serializers.DateTimeField()
    deliveries = DeliveryOutput(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return message_payload(instance)


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    agent = serializers.IntegerField(source="agent_id")
    agent_handle = serializers.CharField(source="agent.handle")
    team = serializers.IntegerField(source="team_id")
    thread = serializers.IntegerField(source="thread_id", allow_null=True)
    # DRF pops declared fields off the class, so `parent` shadows no Field attribute.
    parent = serializers.IntegerField(source="parent_id", allow_null=True)  # type: ignore[assignment]
    children = serializers.SerializerMethodField()
    resumes = serializers.IntegerField(source="resumes_id", allow_null=True)
    harness = serializers.CharField()
    capabilities = serializers.SerializerMethodField()
    sandbox = serializers.CharField()
    prompt = serializers.CharField()
    session_id = serializers.CharField(allow_null=True)
    exit_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    stderr_tail = serializers.CharField()
    result_text = serializers.CharField()
    # What the model gateway recorded; the harness's own report under `reported`.
    usage = serializers.SerializerMethodField()
    cancel_requested = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_children(self, run: Any) -> list[int]:
        return [child.pk for child in run.children.all()]

    @extend_schema_field(RunUsageOutput)
    def get_usage(self, run: Any) -> dict[str, Any]:
        return run_usage_payload(run)

    def get_capabilities(self, run: Any) -> dict[str, bool]:
        from apps.harnesses import capabilities_of

        return capabilities_of(run.harness)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["session_id"] = data["session_id"] or None
        return data


class RunEventOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    data = serializers.DictField()  # type: ignore[assignment]  # DRF pops declared fields off the class
    created_at = serializers.DateTimeField()


class ArtifactVersionOutput(serializers.ModelSerializer):
    artifact = serializers.IntegerField(source="artifact_id")
    author_run = serializers.IntegerField(source="author_run_id", allow_null=True)
    author_agent = serializers.IntegerField(source="author_agent_id", allow_null=True)
    author_user = serializers.IntegerField(source="author_user_id", allow_null=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ArtifactVersion
        fields = [
            "artifact", "version", "sha256", "size", "media_type", "url", "author_run",
            "author_agent", "author_user", "created_at", "download_url",
        ]  # fmt: skip

    def get_download_url(self, version: ArtifactVersion) -> str:
        return reverse(
            "api:artifact-version-download",
            kwargs={"artifact_id": version.artifact_id, "version": version.version},
        )


class ArtifactOutput(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = [
            "id", "team", "thread", "name", "kind", "latest_version", "created_at", "updated_at",
        ]  # fmt: skip


class ArtifactDetailOutput(ArtifactOutput):
    latest = serializers.SerializerMethodField(help_text="The newest version's metadata.")

    class Meta(ArtifactOutput.Meta):
        fields = [*ArtifactOutput.Meta.fields, "latest"]

    @extend_schema_field(ArtifactVersionOutput(allow_null=True))
    def get_latest(self, artifact: Artifact) -> dict[str, Any] | None:
        try:
            version = artifact_version_get(artifact=artifact)
        except NotFound:
            return None
        return ArtifactVersionOutput(version).data


class MemoryOutput(serializers.ModelSerializer):
    updated_by = serializers.SerializerMethodField(
        help_text="@handle of the agent, or the username of the human, who wrote it last."
    )

    class Meta:
        model = MemoryNote
        fields = [
            "key", "value", "updated_by", "updated_by_agent", "updated_by_user", "created_at",
            "updated_at",
        ]  # fmt: skip

    def get_updated_by(self, note: MemoryNote) -> str | None:
        if (agent := note.updated_by_agent) is not None:
            return f"@{agent.handle}"
        if (user := note.updated_by_user) is not None:
            return user.get_username()
        return None
