"""The agent verbs over REST, for the `oz` CLI and scripts: `POST /api/v1/agent/<verb>/` with a
JSON object of the verb's arguments and `Authorization: Bearer $OZWEB_TOKEN`.

Only run tokens work here, and run tokens work only here. Every error is JSON:
`{"detail", "code", "field"?}` (400, 401, 404, 413, 429, ...; the OpenAPI schema lists them).

Under daphne these requests never reach Django: `apps.agentapi.rest` answers them. These DRF
views give the same answer (they call it) for the OpenAPI schema and Django's test client; a
`delegate(wait=true)` waits here blocking the request's thread.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.agentapi.auth import RunTokenAuthentication
from apps.agentapi.inputs import INPUT_CLASSES
from apps.agentapi.rest import Reply, answer, error_reply
from apps.agentapi.verbs import DESCRIPTIONS, VERBS, request_max_bytes
from apps.agentapi.waits import ChildWait, child_result_blocking
from apps.core.errors import ServiceError
from apps.core.throttling import request_address


class RunTokenScheme(OpenApiAuthenticationExtension):
    target_class = RunTokenAuthentication
    name = "runToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "$OZWEB_TOKEN of a run"}


class AgentVerbApi(APIView):
    """Base of the per-verb endpoints; `verb` is set per subclass (any other verb: 404)."""

    # Named for the schema; `answer` checks the token itself and parses the body as JSON.
    authentication_classes = [RunTokenAuthentication]
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []  # `answer` throttles, as the REST door does
    parser_classes = [JSONParser]
    any_content_type = True  # whatever the Content-Type, the body is read as JSON (no 415)
    verb: str = ""

    def perform_authentication(self, request: Request) -> None:
        pass

    def post(self, request: Request, verb: str = "") -> HttpResponse:
        reply = answer(
            verb=verb or self.verb,
            authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            body=request._request.read(request_max_bytes() + 1),
            address=request_address(request._request),
        )
        if isinstance(reply, ChildWait):
            try:
                reply = Reply(200, child_result_blocking(reply))
            except ServiceError as exc:  # as the REST door answers it
                reply = error_reply(exc)
        return reply.http_response()


def _verb_api(verb: str) -> type[AgentVerbApi]:
    name = "".join(part.title() for part in verb.split("_"))

    @extend_schema(
        operation_id=f"agent_{verb}",
        tags=["agent"],
        summary=verb,
        description=DESCRIPTIONS[verb]
        + "\n\nAuthenticated by a run token (`Authorization: Bearer $OZWEB_TOKEN`).",
        request=INPUT_CLASSES[verb],
        responses={200: OpenApiTypes.OBJECT},  # and the errors (apps.api.schema)
    )
    def post(self: AgentVerbApi, request: Request) -> HttpResponse:
        return AgentVerbApi.post(self, request)

    return type(f"Agent{name}Api", (AgentVerbApi,), {"verb": verb, "post": post})


VERB_APIS: dict[str, type[AgentVerbApi]] = {verb: _verb_api(verb) for verb in VERBS}


@extend_schema(exclude=True)
class UnknownVerbApi(AgentVerbApi):
    """Any other /api/v1/agent/<verb>/: a JSON 404 that lists the verbs."""
