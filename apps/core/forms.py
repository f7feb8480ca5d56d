"""Forms call services; a ServiceError lands on the field it names."""

from __future__ import annotations

from django import forms

from apps.core.errors import ServiceError


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)
