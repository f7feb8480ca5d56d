"""The arguments of each agent verb, as DRF serializers: checked the same way at every REST door
(and described in the OpenAPI schema from them)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.agentapi.verbs import VERBS
from apps.artifacts.models import ArtifactKind


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True})
class ThreadField(serializers.Field):
    """A thread id or `#name`; empty means the run's own thread."""

    def to_internal_value(self, data: Any) -> int | str | None:
        if data is None or isinstance(data, int | str) and not isinstance(data, bool):
            return data
        raise ValidationError("A thread id or '#name'.")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
)
class HandlesField(serializers.Field):
    """One @handle or a list of them."""

    def to_internal_value(self, data: Any) -> str | list[str]:
        if isinstance(data, str) or (
            isinstance(data, list) and data and all(isinstance(h, str) for h in data)
        ):
            return data
        raise ValidationError("An @handle or a list of @handles.")

    def to_representation(self, value: Any) -> Any:
        return value


def _thread() -> ThreadField:
    return ThreadField(required=False, allow_null=True, default=None)


# The arguments of each verb: those of apps.agentapi.services (and of the MCP tools).
INPUTS: dict[str, dict[str, serializers.Field]] = {
    "whoami": {},
    "list_team": {},
    "post_message": {"body": serializers.CharField(trim_whitespace=False), "thread": _thread()},
    "send_message": {
        "to": HandlesField(),
        "body": serializers.CharField(trim_whitespace=False),
        "thread": _thread(),
    },
    "read_inbox": {
        "limit": serializers.IntegerField(required=False, default=50, min_value=1),
        "include_read": serializers.BooleanField(required=False, default=False),
    },
    "ack": {"deliveries": serializers.ListField(child=serializers.IntegerField())},
    "delegate": {
        "to": serializers.CharField(),
        "goal": serializers.CharField(trim_whitespace=False),
        "wait": serializers.BooleanField(required=False, default=False),
        "timeout": serializers.FloatField(required=False, default=600, min_value=1),
    },
    "get_run": {"run_id": serializers.IntegerField()},
    "put_artifact": {
        "name": serializers.CharField(),
        "content": serializers.CharField(allow_blank=True, trim_whitespace=False),
        # Checked by the service (an enum here would collide with other `kind` enums).
        "kind": serializers.CharField(
            required=False,
            default=ArtifactKind.FILE,
            help_text=f"One of {', '.join(ArtifactKind.values)}.",
        ),
        "media_type": serializers.CharField(required=False, default="", allow_blank=True),
        "url": serializers.CharField(required=False, default="", allow_blank=True),
    },
    "get_artifact": {
        "name": serializers.CharField(),
        "version": serializers.IntegerField(required=False, allow_null=True, default=None),
    },
    "list_artifacts": {"thread": _thread()},
    "memory_get": {"key": serializers.CharField()},
    "memory_set": {
        "key": serializers.CharField(),
        "value": serializers.CharField(allow_blank=True, trim_whitespace=False),
    },
    "memory_list": {"prefix": serializers.CharField(required=False, default="", allow_blank=True)},
}
assert INPUTS.keys() == VERBS.keys(), "every verb has its REST input, and only verbs do"


def _input_class(verb: str) -> type[serializers.Serializer]:
    name = "".join(part.title() for part in verb.split("_"))
    return type(f"Agent{name}Input", (serializers.Serializer,), dict(INPUTS[verb]))


INPUT_CLASSES: dict[str, type[serializers.Serializer]] = {
    verb: _input_class(verb) for verb in VERBS
}
