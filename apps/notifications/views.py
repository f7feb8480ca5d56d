"""The inbox page and a team's webhook pages (admins). Thin: selectors read, services write."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.forms import form_save
from apps.core.http import AuthenticatedHttpRequest
from apps.notifications import inbox as inbox_services
from apps.notifications import selectors, webhooks
from apps.notifications.forms import WebhookForm
from apps.teams.models import Role
from apps.teams.selectors import access_team

INBOX_PAGE = 100
DELIVERIES_PAGE = 50


@login_required
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "true"
    rows = selectors.notification_list(user=request.user, unread=True if unread_only else None)
    return render(
        request,
        "notifications/inbox.html",
        {
            "notifications": rows.select_related("team")[:INBOX_PAGE],
            "unread_only": unread_only,
        },
    )


@login_required
@require_POST
def notification_open(request: AuthenticatedHttpRequest, notification_id: int) -> HttpResponse:
    notification = selectors.access_notification(user=request.user, notification_id=notification_id)
    inbox_services.notification_mark_read(user=request.user, notification=notification)
    # The url is a path on this site (apps.notifications.inbox._path keeps it so).
    return redirect(notification.url or "notifications")


@login_required
@require_POST
def notification_read(request: AuthenticatedHttpRequest, notification_id: int) -> HttpResponse:
    notification = selectors.access_notification(user=request.user, notification_id=notification_id)
    inbox_services.notification_mark_read(user=request.user, notification=notification)
    return redirect("notifications")


@login_required
@require_POST
def read_all(request: AuthenticatedHttpRequest) -> HttpResponse:
    inbox_services.notifications_mark_all_read(user=request.user)
    return redirect("notifications")


@login_required
def webhook_list(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    actor = access_team(user=request.user, team_id=team_id, role=Role.ADMIN)
    form = WebhookForm(request.POST or None)
    created = form_save(
        request, form, lambda: webhooks.webhook_create(actor=actor, **form.cleaned_data)
    )
    if created is not None:
        messages.success(request, f"Webhook {created.value.pk} added.")
        return redirect("webhook-detail", webhook_id=created.value.pk)
    return render(
        request,
        "notifications/webhooks.html",
        {
            "team": actor.team,
            "webhooks": selectors.webhook_list(team_id=actor.team_id),
            "form": form,
        },
    )


@login_required
def webhook_detail(request: AuthenticatedHttpRequest, webhook_id: int) -> HttpResponse:
    actor, webhook = selectors.access_webhook(user=request.user, webhook_id=webhook_id)
    return render(
        request,
        "notifications/webhook.html",
        {
            "team": actor.team,
            "webhook": webhook,
            "deliveries": selectors.delivery_list(webhook=webhook)[:DELIVERIES_PAGE],
        },
    )


@login_required
@require_POST
def webhook_delete(request: AuthenticatedHttpRequest, webhook_id: int) -> HttpResponse:
    actor, webhook = selectors.access_webhook(user=request.user, webhook_id=webhook_id)
    webhooks.webhook_delete(actor=actor, webhook=webhook)
    messages.success(request, f"Webhook {webhook_id} deleted.")
    return redirect("webhooks", team_id=actor.team_id)
