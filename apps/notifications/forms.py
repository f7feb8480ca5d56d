from __future__ import annotations

from django import forms

from apps.notifications.addresses import MAX_URL_LENGTH
from apps.notifications.models import WEBHOOK_EVENTS, WebhookFormat
from apps.notifications.webhooks import MAX_SECRET_LENGTH


class WebhookForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=MAX_URL_LENGTH,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/ozweb"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in WEBHOOK_EVENTS], widget=forms.CheckboxSelectMultiple
    )
    format = forms.ChoiceField(choices=WebhookFormat.choices, initial=WebhookFormat.JSON)
    secret = forms.CharField(
        required=False,
        max_length=MAX_SECRET_LENGTH,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Signs each body (X-Ozweb-Signature). Kept encrypted, never shown again.",
    )
