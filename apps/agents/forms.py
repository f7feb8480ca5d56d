from __future__ import annotations

from typing import Any

from django import forms

from apps.agents.egress import clean_egress_domains
from apps.agents.models import Agent, ApprovalPolicy, Harness, NetworkPolicy
from harness_image.constants import HARNESS_IMAGE


class AgentForm(forms.Form):
    handle = forms.CharField(max_length=41, help_text="Unique in the team; people write @handle.")
    display_name = forms.CharField(max_length=80, required=False)
    harness = forms.ChoiceField(choices=Harness.choices)
    model = forms.CharField(max_length=120, required=False)
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    command = forms.CharField(
        max_length=500, required=False, help_text="Command harness only: the program to run."
    )
    image = forms.CharField(max_length=200, initial=HARNESS_IMAGE)
    setup_commands = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="One per line."
    )
    environment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="NAME=value, one per line. Not secret: shown to the team.",
    )
    secrets = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        required=False,
        help_text="NAME=value, one per line. Stored encrypted; never shown again. "
        "NAME= with no value removes one.",
    )
    run_timeout_seconds = forms.IntegerField(min_value=10, max_value=7 * 24 * 3600, initial=1800)
    max_concurrent_runs = forms.IntegerField(min_value=1, max_value=50, initial=1)
    approval_policy = forms.ChoiceField(
        choices=ApprovalPolicy.choices,
        initial=ApprovalPolicy.NEVER,
        required=False,
        help_text="Whether tool calls wait for a person's approval in the thread "
        "(Claude Code and Codex only).",
    )
    approval_timeout_s = forms.IntegerField(
        min_value=1,
        max_value=7 * 24 * 3600,
        initial=600,
        required=False,
        label="Approval timeout (seconds)",
        help_text="No answer by then denies the call.",
    )
    network = forms.ChoiceField(
        choices=NetworkPolicy.choices,
        initial=NetworkPolicy.OZWEB,
        required=False,
        help_text="What the run's container reaches: ozweb alone, or also HTTPS to the "
        "egress domains (through a logging allowlist proxy).",
    )
    egress_domains = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One host name a line (pypi.org, *.npmjs.org); used with network egress.",
    )
    repo = forms.TypedChoiceField(
        coerce=int,
        empty_value=None,
        required=False,
        label="Repository",
        help_text="A team repository: each run works on a branch of its own in a fresh clone, "
        "and its work becomes a change to review.",
    )

    def __init__(self, *args: Any, team: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The team's repositories (apps.repos is a higher layer: reached through the relation).
        repositories = Agent._meta.get_field("repo").related_model
        assert not isinstance(repositories, str)
        names = (
            repositories._default_manager.filter(team=team)
            .order_by("name")
            .values_list("pk", "name")
            if team is not None
            else []
        )
        self.fields["repo"].choices = [("", "None"), *names]  # type: ignore[attr-defined]

    def _pairs(self, name: str) -> dict[str, str | None]:
        pairs: dict[str, str | None] = {}
        for number, line in enumerate(self.cleaned_data.get(name, "").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"Line {number} is not NAME=value.")
            pairs[key.strip()] = value if value != "" else None
        return pairs

    def clean_environment(self) -> dict[str, str | None]:
        return self._pairs("environment")

    def clean_secrets(self) -> dict[str, str | None]:
        return self._pairs("secrets")

    def clean_approval_policy(self) -> str:
        return self.cleaned_data.get("approval_policy") or ApprovalPolicy.NEVER

    def clean_approval_timeout_s(self) -> int:
        value = self.cleaned_data.get("approval_timeout_s")
        return 600 if value is None else value

    def clean_network(self) -> str:
        return self.cleaned_data.get("network") or NetworkPolicy.OZWEB

    def clean_egress_domains(self) -> list[str]:
        return clean_egress_domains(self.cleaned_data.get("egress_domains", ""))

    def service_fields(self) -> dict[str, Any]:
        return dict(self.cleaned_data)

    @staticmethod
    def initial_for(agent: Any) -> dict[str, Any]:
        return {
            "handle": agent.handle,
            "display_name": agent.display_name,
            "harness": agent.harness,
            "model": agent.model,
            "instructions": agent.instructions,
            "command": agent.command,
            "image": agent.image,
            "setup_commands": "\n".join(agent.setup_commands),
            "environment": "\n".join(f"{k}={v}" for k, v in agent.environment.items()),
            "run_timeout_seconds": agent.run_timeout_seconds,
            "max_concurrent_runs": agent.max_concurrent_runs,
            "approval_policy": agent.approval_policy,
            "approval_timeout_s": agent.approval_timeout_s,
            "network": agent.network,
            "egress_domains": "\n".join(agent.egress_domains),
            "repo": agent.repo_id,
        }
