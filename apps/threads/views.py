"""Thread pages, the team dashboard, and the door from an agent's page to its direct thread.

The access_<entity> selectors raise NotFound and PermissionDenied, which Django shows as its
404 and 403 pages.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as django_messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.agents.selectors import access_agent, agent_list
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.forms import add_service_error
from apps.core.http import AuthenticatedHttpRequest
from apps.core.ids import bounded_int
from apps.core.registry import health_checks
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team, invitation_list_for_invitee, membership_list
from apps.threads import deliveries, selectors, services
from apps.threads.forms import MessageForm, ThreadForm


def _mention_candidates(membership: Membership) -> list[dict[str, str]]:
    agents = [
        {"handle": a.handle, "name": a.display_name, "kind": "agent"}
        for a in agent_list(team=membership.team)
    ]
    humans = [
        {"handle": m.user.username, "name": m.user.username, "kind": "human"}
        for m in membership_list(team=membership.team)
    ]
    return agents + humans


@login_required
def dashboard(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    team = membership.team
    return render(
        request,
        "teams/dashboard.html",
        {
            "team": team,
            "membership": membership,
            "threads": list(selectors.thread_list(team=team, user=request.user)),
            "agents": list(agent_list(team=team)),
            "activity": selectors.recent_activity(team=team),
            "invitations": list(invitation_list_for_invitee(user=request.user)),
            "sandbox_problems": _sandbox_problems(membership),
        },
    )


def _sandbox_problems(membership: Membership) -> list[str]:
    """For admins: what keeps runs from being sandboxed as documented (the runs app's
    "sandbox_hardening" health check, reached through the registry)."""
    check = health_checks().get("sandbox_hardening")
    if check is None or membership.role not in (Role.OWNER, Role.ADMIN):
        return []
    try:
        problems = check().get("problems") or []
    except Exception as exc:  # a health check reports, it does not break the dashboard
        problems = [f"the check failed: {exc}"]
    return [str(problem) for problem in problems]


@login_required
def thread_new(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id, role=Role.MEMBER)
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
def thread_page(request: AuthenticatedHttpRequest, thread_id: int) -> HttpResponse:
    membership, thread = selectors.access_thread(user=request.user, thread_id=thread_id)
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
            # An archived agent's direct thread is history (message_post refuses it too).
            "can_post": membership.has_role(Role.MEMBER)
            and not (thread.agent is not None and thread.agent.is_archived),
            "form": MessageForm(),
            "mention_candidates": _mention_candidates(membership),
        },
    )


@login_required
@require_GET
def messages_older(request: AuthenticatedHttpRequest, thread_id: int) -> HttpResponse:
    _, thread = selectors.access_thread(user=request.user, thread_id=thread_id)
    before = bounded_int(request.GET.get("before"), low=0)
    if before is None:
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
def message_create(request: AuthenticatedHttpRequest, thread_id: int) -> HttpResponse:
    """Post a reply. The new message reaches every viewer, this one too, over the websocket."""
    membership, thread = selectors.access_thread(user=request.user, thread_id=thread_id)
    form = MessageForm(request.POST)
    if form.is_valid():
        try:
            services.message_post(actor=membership, thread=thread, body=form.cleaned_data["body"])
        except PermissionDenied:
            raise  # a viewer: no composer to re-render, the 403 page
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            form = MessageForm()
    if not request.htmx:
        for error in form.errors.get("body", []) + form.non_field_errors():
            # ErrorList yields message strings (its __getitem__ unwraps ValidationError).
            django_messages.error(request, error)  # type: ignore[arg-type]
        return redirect("thread", thread_id=thread.pk)
    return render(
        request,
        "threads/thread.html#composer",
        {"thread": thread, "form": form, "can_post": True},
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def delivery_release(
    request: AuthenticatedHttpRequest, thread_id: int, delivery_id: int
) -> HttpResponse:
    """Let a held message through; answers with the message's refreshed deliveries."""
    membership, delivery = selectors.access_delivery(
        user=request.user, delivery_id=delivery_id, thread_id=thread_id
    )
    thread = delivery.message.thread
    try:
        deliveries.delivery_release(actor=membership, delivery=delivery)
    except PermissionDenied:
        raise  # the 403 page
    except ServiceError as exc:
        if exc.code != "not_held":
            return HttpResponse(exc.message, status=400)
        # Someone released it first: show where it is now.
    if not request.htmx:
        return redirect("thread", thread_id=thread.pk)
    message = selectors.message_get(thread=thread, message_id=delivery.message_id)
    return render(request, "threads/thread.html#deliveries", {"message": message})


@login_required
@require_POST
def agent_direct_thread(request: AuthenticatedHttpRequest, agent_id: int) -> HttpResponse:
    """The agent page's "Message" button: open (or create) the direct thread with it."""
    membership, agent = access_agent(user=request.user, agent_id=agent_id)
    try:
        thread = services.thread_direct_get_or_create(actor=membership, agent=agent)
    except ServiceError as exc:
        django_messages.error(request, exc.message)
        return redirect("agent-detail", agent_id=agent_id)
    return redirect("thread", thread_id=thread.pk)
