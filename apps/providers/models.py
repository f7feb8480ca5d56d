from __future__ import annotations

from django.db import models

from apps.core.models import TimeStampedModel
from apps.teams.models import Team


class ProviderKind(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "OpenAI"
    GEMINI = "gemini", "Gemini"


class Provider(TimeStampedModel):
    """A team's model provider: the gateway forwards to base_url with the key, which never
    leaves the server (stored encrypted, apps.core.secretbox)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="providers")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    base_url = models.URLField(max_length=500)
    api_key_ciphertext = models.TextField(blank=True)
    # Price per million tokens by model: {"<model>": {"input": .., "output": .., "cache_read": ..,
    # "cache_write": ..}}; models not listed fall back to the built-in table.
    prices = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="provider_name_unique"),
            models.CheckConstraint(
                condition=models.Q(kind__in=ProviderKind.values), name="provider_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"
