"""The approval card's buttons (htmx): answer, then the card as it now is."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from apps.approvals.selectors import access_approval
from apps.approvals.services import approval_decide
from apps.core.errors import Conflict, NotFound, PermissionDenied, ServiceError
from apps.core.http import AuthenticatedHttpRequest
from apps.threads.models import Message
from apps.threads.selectors import message_get

BUTTONS = {"approve": ("approve", False), "approve_all": ("approve", True), "deny": ("deny", False)}


@login_required
@require_POST
def approval_decide_view(request: AuthenticatedHttpRequest, approval_id: int) -> HttpResponse:
    actor, approval = access_approval(user=request.user, approval_id=approval_id)
    decision, all_like_this = BUTTONS.get(request.POST.get("decision", ""), ("", False))
    try:
        approval = approval_decide(
            actor=actor,
            approval=approval,
            decision=decision,
            reason=request.POST.get("reason", ""),
            all_like_this=all_like_this,
        )
    except Conflict:
        pass  # answered by someone else a moment ago: show the card as it is now
    except (PermissionDenied, NotFound):
        raise  # Django's 403 and 404 pages
    except ServiceError as exc:
        return HttpResponseBadRequest(exc.message)
    if approval.message_id is None or approval.thread is None:
        raise NotFound()
    message: Message = message_get(thread=approval.thread, message_id=approval.message_id)
    return HttpResponse(render_to_string("threads/thread.html#message", {"message": message}))
