"""The agent verbs over REST, for the `oz` CLI and scripts: `POST /api/v1/agent/<verb>/` with a
JSON object of the verb's arguments and `Authorization: Bearer $OZWEB_TOKEN`.

Only run tokens work here, and run tokens work only here. Every error is JSON:
`{"detail", "code", "field"}` with 400, 401 or 404.
"""

from __future__ import annotations

import json
from typing import IO, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import APIException, NotAuthenticated, ParseError, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.agentapi.auth import MISSING_TOKEN, HasRunToken, RunTokenAuthentication
from apps.agentapi.verbs import DESCRIPTIONS, VERBS, request_max_bytes, verb_call
from apps.api.errors import exception_handler
from apps.artifacts.models import ArtifactKind
from apps.core.errors import NotFound, ServiceError


class AgentJSONParser(BaseParser):
    """JSON bodies as large as an artifact may be. DRF's JSONParser reads `request.body`, which
    Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, meant for forms)."""

    media_type = "application/json"

    def parse(
        self, stream: IO[bytes] | None, media_type: Any = None, parser_context: Any = None
    ) -> Any:
        limit = request_max_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ServiceError(f"The request is over {limit:,} bytes.", code="too_large")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


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

ERROR_OUTPUT = inline_serializer(
    "AgentApiError",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "field": serializers.CharField(required=False),
    },
)


def agent_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Service errors as the human API has them; DRF's own errors in the same shape."""
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, APIException):
        return response
    if isinstance(exc, ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        field, messages = next(iter(errors.items()))
        message = messages[0] if isinstance(messages, list) and messages else messages
        body: dict[str, Any] = {"detail": f"{field}: {message}", "code": "invalid"}
        if field != "non_field_errors":
            body["field"] = field
        body["errors"] = errors
        response.data = body
    else:
        codes = exc.get_codes()
        response.data = {
            "detail": MISSING_TOKEN if isinstance(exc, NotAuthenticated) else str(exc.detail),
            "code": codes if isinstance(codes, str) else "error",
        }
    return response


class RunTokenScheme(OpenApiAuthenticationExtension):
    target_class = RunTokenAuthentication
    name = "runToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "$OZWEB_TOKEN of a run"}


class AgentVerbApi(APIView):
    """Base of the per-verb endpoints; `verb` and `Input` are set per subclass."""

    authentication_classes = [RunTokenAuthentication]
    permission_classes = [HasRunToken]
    parser_classes = [AgentJSONParser]
    verb: str = ""
    Input: type[serializers.Serializer]

    def get_exception_handler(self) -> Any:
        return agent_exception_handler

    def post(self, request: Request) -> Response:
        serializer = self.Input(data=request.data)
        serializer.is_valid(raise_exception=True)
        arguments = dict(serializer.validated_data)
        return Response(verb_call(run=request.auth, verb=self.verb, arguments=arguments))


def _verb_api(verb: str) -> type[AgentVerbApi]:
    name = "".join(part.title() for part in verb.split("_"))
    input_class = type(f"Agent{name}Input", (serializers.Serializer,), dict(INPUTS[verb]))

    @extend_schema(
        operation_id=f"agent_{verb}",
        tags=["agent"],
        summary=verb,
        description=DESCRIPTIONS[verb]
        + "\n\nAuthenticated by a run token (`Authorization: Bearer $OZWEB_TOKEN`).",
        request=input_class,
        responses={200: OpenApiTypes.OBJECT, **dict.fromkeys((400, 401, 404), ERROR_OUTPUT)},
    )
    def post(self: AgentVerbApi, request: Request) -> Response:
        return AgentVerbApi.post(self, request)

    return type(
        f"Agent{name}Api", (AgentVerbApi,), {"verb": verb, "Input": input_class, "post": post}
    )


VERB_APIS: dict[str, type[AgentVerbApi]] = {verb: _verb_api(verb) for verb in VERBS}


@extend_schema(exclude=True)
class UnknownVerbApi(APIView):
    """Any other /api/v1/agent/<verb>/: a JSON 404 that lists the verbs."""

    authentication_classes = [RunTokenAuthentication]
    permission_classes = [HasRunToken]

    def get_exception_handler(self) -> Any:
        return agent_exception_handler

    def post(self, request: Request, verb: str) -> Response:
        raise NotFound(f"There is no agent verb {verb!r}. Verbs: {', '.join(VERBS)}.")
