from django import forms


class MemoryNoteForm(forms.Form):
    key = forms.CharField(max_length=200, help_text="e.g. conventions/testing or deploy:host")
    value = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False, required=False)


class MemoryDeleteForm(forms.Form):
    key = forms.CharField(max_length=200)
