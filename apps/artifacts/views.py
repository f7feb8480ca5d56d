"""Artifact and team memory pages. The access_<entity> selectors' NotFound and
PermissionDenied are the 404 and 403 pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.artifacts import selectors, services
from apps.artifacts.forms import ArtifactForm, MemoryDeleteForm, MemoryNoteForm
from apps.artifacts.media_types import is_media_type
from apps.artifacts.previews import version_preview
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.forms import add_service_error
from apps.core.http import AuthenticatedHttpRequest
from apps.core.ids import bounded_int
from apps.teams.models import Membership, Role
from apps.teams.selectors import access_team
from apps.threads.selectors import thread_list


@login_required
def artifact_list(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    # Everyone sees the list; adding is for members.
    membership = access_team(
        user=request.user,
        team_id=team_id,
        role=Role.MEMBER if request.method == "POST" else Role.VIEWER,
    )
    thread_id = bounded_int(request.GET.get("thread"))  # anything else: no filter
    threads = list(thread_list(team=membership.team, user=request.user))
    form = ArtifactForm(request.POST or None, request.FILES or None)
    thread_field = form.fields["thread"]
    assert isinstance(thread_field, forms.TypedChoiceField)
    thread_field.choices = [("", "no thread")] + [(t.pk, t.label) for t in threads]
    if request.method == "POST" and form.is_valid():
        version = _put_from_form(membership, form, threads)
        if version is not None:
            messages.success(request, f"Stored {version.artifact.name} v{version.version}.")
            return redirect(f"{version.artifact.get_absolute_url()}?v={version.version}")
    return render(
        request,
        "artifacts/artifact_list.html",
        {
            "team": membership.team,
            "membership": membership,
            "artifacts": selectors.artifact_list(team=membership.team, thread_id=thread_id),
            "threads": threads,
            "thread": next((t for t in threads if t.pk == thread_id), None),
            "form": form,
        },
    )


def _put_from_form(membership: Membership, form: ArtifactForm, threads: list) -> Any:
    data = form.cleaned_data
    upload = data.get("file")
    try:
        if upload is not None:
            services.artifact_check_size(upload.size)  # before reading it
        content = upload.read() if upload is not None else data.get("text") or ""
        return services.artifact_put_as_human(
            actor=membership,
            name=data["name"],
            content=content,
            kind=data["kind"],
            media_type=_sent_media_type(upload),
            url=data.get("url") or "",
            thread=next((t for t in threads if t.pk == data.get("thread")), None),
        )
    except ServiceError as exc:
        add_service_error(form, exc)
        return None


def _sent_media_type(upload: Any) -> str:
    """The media type the browser gave the file, if it is one (else the service guesses one
    from the name): it is not a field the person filled in, so it is not refused."""
    sent = (upload.content_type or "") if upload is not None else ""
    return sent if is_media_type(sent) else ""


@login_required
@require_GET
def artifact_detail(request: AuthenticatedHttpRequest, artifact_id: int) -> HttpResponse:
    membership, artifact = selectors.access_artifact(user=request.user, artifact_id=artifact_id)
    versions = list(selectors.artifact_version_list(artifact=artifact))
    wanted = bounded_int(request.GET.get("v"))
    selected = next((v for v in versions if v.version == wanted), versions[0] if versions else None)
    if wanted is not None and (selected is None or selected.version != wanted):
        raise Http404
    return render(
        request,
        "artifacts/artifact_detail.html",
        {
            "team": membership.team,
            "membership": membership,
            "artifact": artifact,
            "versions": versions,
            "selected": selected,
            "preview": version_preview(selected) if selected else None,
        },
    )


def _memory_context(membership: Membership, form: MemoryNoteForm | None = None) -> dict:
    return {
        "team": membership.team,
        "membership": membership,
        "notes": selectors.memory_list(team=membership.team),
        "form": form or MemoryNoteForm(),
        "can_edit": membership.has_role(Role.MEMBER),
    }


@login_required
@require_GET
def memory_page(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id)
    return render(request, "artifacts/memory.html", _memory_context(membership))


def _memory_answer(
    request: AuthenticatedHttpRequest, membership: Membership, form: MemoryNoteForm | None = None
) -> HttpResponse:
    """htmx gets the refreshed panel (422 with the errors); a plain form post a redirect."""
    failed = form is not None and bool(form.errors)
    if not request.htmx:
        for errors in form.errors.values() if form is not None else []:
            for error in errors:
                # ErrorList yields the message strings; its stub says ValidationError | str.
                messages.error(request, error)  # type: ignore[arg-type]
        return redirect("memory", team_id=membership.team_id)
    return render(
        request,
        "artifacts/memory.html#panel",
        _memory_context(membership, form if failed else None),
        status=422 if failed else 200,
    )


@login_required
@require_POST
def memory_save(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id, role=Role.MEMBER)
    form = MemoryNoteForm(request.POST)
    if form.is_valid():
        try:
            services.memory_set_as_human(actor=membership, **form.cleaned_data)
        except PermissionDenied:
            raise  # the 403 page
        except ServiceError as exc:
            add_service_error(form, exc)
    return _memory_answer(request, membership, form)


@login_required
@require_POST
def memory_delete(request: AuthenticatedHttpRequest, team_id: int) -> HttpResponse:
    membership = access_team(user=request.user, team_id=team_id, role=Role.MEMBER)
    form = MemoryDeleteForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Say which key to delete.", status=400)
    services.memory_delete(actor=membership, key=form.cleaned_data["key"])
    return _memory_answer(request, membership)
