from django import forms

from apps.teams.models import Role


class TeamForm(forms.Form):
    name = forms.CharField(max_length=80)


class InviteForm(forms.Form):
    who = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TeamSettingsForm(forms.Form):
    hop_limit = forms.IntegerField(
        label="Hop limit",
        min_value=1,
        max_value=1000,
        help_text="Agent-to-agent steps before a new message waits for a human to release it.",
    )
