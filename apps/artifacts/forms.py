from typing import Any

from django import forms

from apps.artifacts.models import ArtifactKind


class MemoryNoteForm(forms.Form):
    key = forms.CharField(max_length=200, help_text="e.g. conventions/testing or deploy:host")
    value = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False, required=False)


class MemoryDeleteForm(forms.Form):
    key = forms.CharField(max_length=200)


class ArtifactForm(forms.Form):
    """A person adds an artifact (or a new version of one) from the artifacts page."""

    name = forms.CharField(max_length=200, help_text="An existing name adds a new version.")
    kind = forms.ChoiceField(choices=ArtifactKind.choices, initial=ArtifactKind.FILE)
    file = forms.FileField(required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False, required=False)
    url = forms.URLField(required=False, assume_scheme="https", help_text="For a link.")
    thread = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("file") and not data.get("text") and data.get("kind") != "link":
            raise forms.ValidationError("Upload a file or write the content.")
        return data
