from __future__ import annotations

from django.conf import settings
from django.contrib import messages as django_messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as Forbidden
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.agents.selectors import agent_list
from apps.core.errors import NotFound, PermissionDenied, ServiceError
from apps.core.forms import add_service_error
from apps.teams.models import Membership, Role
from apps.teams.views import membership_or_404
from apps.threads import selectors, services
from apps.threads.forms import MessageForm, ThreadForm
from apps.threads.models import Delivery, Thread


def _thread_or_404(request: HttpRequest, thread_id: int) -> tuple[Membership, Thread]:
    try:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
    except NotFound:
        raise Http404 from None
    return membership_or_404(request, thread.team_id), thread


def _mention_candidates(membership: Membership) -> list[dict[str, str]]:
    agents = [
        {"handle": a.handle, "name": a.display_name, "kind": "agent"}
        for a in agent_list(team=membership.team)
    ]
    humans = [
        {"handle": username, "name": username, "kind": "human"}
        for username in get_user_model()
        .objects.filter(memberships__team=membership.team)
        .values_list("username", flat=True)
    ]
    return agents + humans


@login_required
def thread_new(request: HttpRequest, team_id: int) -> HttpResponse:
    membership = membership_or_404(request, team_id, Role.MEMBER)
    form = ThreadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.thread_create(actor=membership, **form.cleaned_data)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            return redirect("thread", thread_id=thread.pk)
    return render(request, "threads/thread_new.html", {"team": membership.team, "form": form})


@login_required
def thread_page(request: HttpRequest, thread_id: int) -> HttpResponse:
    membership, thread = _thread_or_404(request, thread_id)
    page = settings.OZWEB_FEED_PAGE_SIZE
    messages = selectors.messages_before(thread=thread, before=None, limit=page)
    services.thread_mark_read(thread=thread, user=request.user)
    return render(
        request,
        "threads/thread.html",
        {
            "team": membership.team,
            "membership": membership,
            "thread": thread,
            "threads": list(selectors.thread_list(team=membership.team, user=request.user)),
            "feed": messages,
            "has_older": bool(messages) and messages[0].seq > 1,
            "oldest_seq": messages[0].seq if messages else 0,
            "newest_seq": messages[-1].seq if messages else 0,
            "can_post": membership.has_role(Role.MEMBER),
            "form": MessageForm(),
            "mention_candidates": _mention_candidates(membership),
        },
    )


@login_required
@require_GET
def messages_older(request: HttpRequest, thread_id: int) -> HttpResponse:
    _, thread = _thread_or_404(request, thread_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponse("before must be a number", status=400)
    messages = selectors.messages_before(
        thread=thread, before=before, limit=settings.OZWEB_FEED_PAGE_SIZE
    )
    return render(
        request,
        "threads/thread.html#older",
        {
            "thread": thread,
            "feed": messages,
            "has_older": bool(messages) and messages[0].seq > 1,
            "oldest_seq": messages[0].seq if messages else 0,
        },
    )


@login_required
@require_POST
def message_create(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Post a reply. The new message reaches every viewer, this one too, over the websocket."""
    membership, thread = _thread_or_404(request, thread_id)
    form = MessageForm(request.POST)
    if form.is_valid():
        try:
            services.message_post(actor=membership, thread=thread, body=form.cleaned_data["body"])
        except PermissionDenied as exc:
            raise Forbidden(exc.message) from None  # a viewer: no composer to re-render
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            form = MessageForm()
    if not request.htmx:
        for error in form.errors.get("body", []) + form.non_field_errors():
            django_messages.error(request, error)
        return redirect("thread", thread_id=thread.pk)
    return render(
        request,
        "threads/thread.html#composer",
        {"thread": thread, "form": form, "can_post": True},
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def delivery_release(request: HttpRequest, thread_id: int, delivery_id: int) -> HttpResponse:
    """Let a held message through; answers with the message's refreshed deliveries."""
    membership, thread = _thread_or_404(request, thread_id)
    delivery = (
        Delivery.objects.select_related("agent", "message")
        .filter(pk=delivery_id, message__thread=thread)
        .first()
    )
    if delivery is None:
        raise Http404
    try:
        services.delivery_release(actor=membership, delivery=delivery)
    except PermissionDenied as exc:
        raise Forbidden(exc.message) from None
    except ServiceError as exc:
        if exc.code != "not_held":
            return HttpResponse(exc.message, status=400)
        # Someone released it first: show where it is now.
    if not request.htmx:
        return redirect("thread", thread_id=thread.pk)
    message = selectors.message_get(thread=thread, message_id=delivery.message_id)
    return render(request, "threads/thread.html#deliveries", {"message": message})
