"""The arguments of each agent verb, as DRF serializers: checked the same way at every REST door
(and described in the OpenAPI schema from them)."""

from __future__ import annotations

import threading
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.agentapi.verbs import VERBS
from apps.artifacts.media_types import MEDIA_TYPE_HELP, MEDIA_TYPE_MAX_LENGTH, MEDIA_TYPE_PATTERN
from apps.artifacts.models import MEMORY_KEY_HELP, MEMORY_KEY_INPUT, ArtifactKind
from apps.artifacts.services import NAME_HELP, NAME_INPUT
from apps.core.ids import ID_SCHEMA, MAX_ID, bounded_int, id_field, is_id
from apps.core.json_types import StrictSerializer, integral
from apps.core.patterns import NOT_BLANK


@extend_schema_field(
    {
        "oneOf": [
            ID_SCHEMA,
            # A '#name', or an id written out (from 1 to 19 digits: nothing larger is one).
            {"type": "string", "pattern": r"^(?:|[\s\S]*[^0-9][\s\S]*|(?!0+$)[0-9]{1,19})$"},
        ],  # and null (allow_null)
    }
)
class ThreadField(serializers.Field):
    """A thread id or `#name`; empty means the run's own thread."""

    def to_internal_value(self, data: Any) -> int | str | None:
        data = integral(data)
        if data is None or is_id(data):
            return data
        out_of_range = ValidationError(f"A thread id is from 1 to {MAX_ID}.")
        if isinstance(data, int) and not isinstance(data, bool):
            raise out_of_range
        if isinstance(data, str):
            if data.isascii() and data.isdigit() and bounded_int(data) is None:
                raise out_of_range
            return data
        raise ValidationError("A thread id or '#name'.")

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
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


def _text(empty: str) -> serializers.RegexField:
    """Text that is not only whitespace (kept as sent)."""
    return serializers.RegexField(
        NOT_BLANK, trim_whitespace=False, error_messages={"invalid": empty, "blank": empty}
    )


def _artifact_name() -> serializers.RegexField:
    return serializers.RegexField(
        NAME_INPUT, trim_whitespace=False, error_messages={"invalid": NAME_HELP}
    )


def _memory_key() -> serializers.RegexField:
    return serializers.RegexField(
        MEMORY_KEY_INPUT, trim_whitespace=False, error_messages={"invalid": MEMORY_KEY_HELP}
    )


# The arguments of each verb: those of apps.agentapi.services (and of the MCP tools).
INPUTS: dict[str, dict[str, serializers.Field]] = {
    "whoami": {},
    "list_team": {},
    "post_message": {"body": _text("The message is empty."), "thread": _thread()},
    "send_message": {
        "to": HandlesField(),
        "body": _text("The message is empty."),
        "thread": _thread(),
    },
    "read_inbox": {
        "limit": serializers.IntegerField(required=False, default=50, min_value=1),
        "include_read": serializers.BooleanField(required=False, default=False),
    },
    "ack": {"deliveries": serializers.ListField(child=id_field())},
    "delegate": {
        "to": serializers.CharField(),
        "goal": _text("Give the goal to delegate."),
        "wait": serializers.BooleanField(required=False, default=False),
        "timeout": serializers.FloatField(required=False, default=600, min_value=1),
    },
    "get_run": {"run_id": id_field()},
    "put_artifact": {
        "name": _artifact_name(),
        "content": serializers.CharField(allow_blank=True, trim_whitespace=False),
        "kind": serializers.ChoiceField(
            choices=ArtifactKind.choices, required=False, default=ArtifactKind.FILE
        ),
        "media_type": serializers.RegexField(
            MEDIA_TYPE_PATTERN,
            max_length=MEDIA_TYPE_MAX_LENGTH,
            required=False,
            default="",
            allow_blank=True,
            help_text=f"Default: guessed from the name and kind. {MEDIA_TYPE_HELP}",
        ),
        "url": serializers.CharField(required=False, default="", allow_blank=True),
    },
    "get_artifact": {
        "name": serializers.CharField(),
        "version": id_field(required=False, allow_null=True, default=None),
    },
    "list_artifacts": {"thread": _thread()},
    "memory_get": {"key": _memory_key()},
    "memory_set": {
        "key": _memory_key(),
        "value": serializers.CharField(allow_blank=True, trim_whitespace=False),
    },
    "memory_list": {"prefix": serializers.CharField(required=False, default="", allow_blank=True)},
    "list_changes": {
        "status": serializers.ChoiceField(
            choices=["open", "merged", "closed", "all"], required=False, default="open"
        ),
        "mine": serializers.BooleanField(required=False, default=False),
    },
    "get_change": {
        "change_id": id_field(),
        "version": id_field(required=False, allow_null=True, default=None),
        "since": id_field(
            required=False,
            allow_null=True,
            default=None,
            help_text="Diff against this version instead of the base.",
        ),
    },
    "get_review_comments": {
        "change_id": id_field(required=False, allow_null=True, default=None),
        "artifact": serializers.CharField(required=False, default="", allow_blank=True),
        "state": serializers.ChoiceField(
            choices=["", "pending", "sent", "resolved"], required=False, default=""
        ),
    },
}
assert INPUTS.keys() == VERBS.keys(), "every verb has its REST input, and only verbs do"


def _input_class(verb: str) -> type[serializers.Serializer]:
    name = "".join(part.title() for part in verb.split("_"))
    return type(f"Agent{name}Input", (StrictSerializer,), dict(INPUTS[verb]))


INPUT_CLASSES: dict[str, type[serializers.Serializer]] = {
    verb: _input_class(verb) for verb in VERBS
}


# One checker per verb per thread, reused: building a serializer deep-copies each of its
# fields, which re-runs every field's __init__ (a twentieth of an agent message's CPU;
# bench/writes.py, py-spy). A check runs start to end on its thread, with nothing kept from
# the last one but the bound fields, which hold no state of a check.
_checkers = threading.local()


def arguments_check(verb: str, data: Any) -> tuple[dict[str, Any] | None, Any]:
    """`verb`'s arguments in `data`, validated: (arguments, None), or (None, the errors as
    DRF gives them)."""
    by_verb: dict[str, serializers.Serializer] = _checkers.__dict__.setdefault("by_verb", {})
    checker = by_verb.get(verb)
    if checker is None:
        checker = by_verb[verb] = INPUT_CLASSES[verb](data=data)
    else:
        checker.initial_data = data
        for done in ("_validated_data", "_errors", "_data"):
            checker.__dict__.pop(done, None)
    if checker.is_valid():
        return dict(checker.validated_data), None
    return None, checker.errors
