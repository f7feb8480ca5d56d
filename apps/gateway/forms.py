from __future__ import annotations

import json
from typing import Any

from django import forms

from apps.providers.models import ProviderKind


class ProviderForm(forms.Form):
    name = forms.CharField(max_length=80)
    kind = forms.ChoiceField(choices=ProviderKind.choices)
    base_url = forms.CharField(
        label="Base URL",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://api.anthropic.com"}),
        help_text="Anthropic: https://api.anthropic.com · OpenAI: https://api.openai.com/v1 · "
        "Gemini: https://generativelanguage.googleapis.com",
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Kept encrypted, never shown again; it never enters a sandbox.",
    )
    prices = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": '{"claude-sonnet-4-5": {"input": 3, "output": 15}}'}
        ),
        help_text="USD per million tokens by model (input, output, cache_read, cache_write), "
        "over the built-in table. Empty: the built-in table.",
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            self.fields["api_key"].help_text = "Empty: keep the stored key."

    def clean_api_key(self) -> str:
        key = str(self.cleaned_data.get("api_key") or "")
        if not key and not self.editing:
            raise forms.ValidationError("A provider needs its API key.")
        return key

    def clean_prices(self) -> dict[str, Any]:
        text = str(self.cleaned_data.get("prices") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('An object by model: {"<model>": {"input": 3, ...}}.')
        return value

    def service_fields(self) -> dict[str, Any]:
        fields = dict(self.cleaned_data)
        if self.editing and not fields.get("api_key"):
            fields.pop("api_key", None)
        return fields


class BudgetRaiseForm(forms.Form):
    value = forms.DecimalField(required=False, max_digits=20, decimal_places=4, min_value=0)


class TeamBudgetsForm(forms.Form):
    """The team's spend limits in US dollars; empty: no limit."""

    budget_day_usd = forms.DecimalField(
        required=False, max_digits=12, decimal_places=4, min_value=0, label="Per day (UTC)"
    )
    budget_month_usd = forms.DecimalField(
        required=False, max_digits=12, decimal_places=4, min_value=0, label="Per month (UTC)"
    )
