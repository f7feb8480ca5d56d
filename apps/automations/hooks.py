"""POST /hooks/<token>/: the door of inbound triggers (apps.automations.inbound does the work).

The URL's token is the credential, so it is throttled as other credentials are
(apps.core.throttling): an unknown token or a bad GitHub signature counts against the caller's
address, and once that count is used up the address is answered 429 for any token; every
address is also held to the anonymous rate (OZWEB_THROTTLE_ANON). An unknown token is a 404.
A body over OZWEB_HOOK_MAX_BYTES is a 413, by its Content-Length or, without one, by reading
no more than the limit.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.automations.inbound import InboundCall, hook_max_bytes, trigger_receive
from apps.automations.selectors import trigger_for_token
from apps.core.throttling import (
    UNKNOWN_ADDRESS,
    Rate,
    auth_failed,
    auth_refused_wait,
    rate_hit,
    request_address,
)

MAX_TOKEN_LENGTH = 200


def _too_many(wait: int) -> JsonResponse:
    response = JsonResponse(
        {"detail": f"Too many requests; try again in {wait} seconds.", "code": "throttled"},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt
@require_POST
def hook_receive(request: HttpRequest, token: str) -> HttpResponse:
    address = request_address(request)
    wait = rate_hit("hooks", address or UNKNOWN_ADDRESS, Rate.parse(settings.OZWEB_THROTTLE_ANON))
    if wait is not None:
        return _too_many(wait)
    trigger = trigger_for_token(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if trigger is None:
        wait = auth_failed(address)
        if wait is not None:
            return _too_many(wait)
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    wait = auth_refused_wait(address)
    if wait is not None:
        return _too_many(wait)
    answer = trigger_receive(
        trigger=trigger,
        call=InboundCall(
            body=_read_body(request),
            content_type=request.content_type or "",
            event=request.headers.get("X-GitHub-Event", ""),
            signature=request.headers.get("X-Hub-Signature-256", ""),
            address=address,
        ),
    )
    if answer.refused_credential:
        wait = auth_failed(address)
        if wait is not None:
            return _too_many(wait)
    return JsonResponse(answer.body, status=answer.status)


def _read_body(request: HttpRequest) -> bytes | None:
    """The body, or None if it is over the limit (read no further than that)."""
    limit = hook_max_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body
