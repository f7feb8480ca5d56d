"""Forms call services; a ServiceError lands on the field it names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from django import forms
from django.http import HttpRequest

from apps.core.errors import ServiceError

T = TypeVar("T")


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


@dataclass(frozen=True)
class Saved(Generic[T]):
    value: T  # what the service returned


def form_save(request: HttpRequest, form: forms.Form, save: Callable[[], T]) -> Saved[T] | None:
    """A page's form post: when it is a valid POST, `save()` (the service call). None when
    nothing was saved (a GET, an invalid form, or the service refused, its reason put on the
    form): the page renders the form again."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return Saved(save())
    except ServiceError as exc:
        add_service_error(form, exc)
        return None
