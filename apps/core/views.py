from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from apps.core import health


async def healthz(request: HttpRequest) -> JsonResponse:
    report = await health.report()
    return JsonResponse(report, status=200 if report["ok"] else 503)
