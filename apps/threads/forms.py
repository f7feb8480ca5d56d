from django import forms


class ThreadForm(forms.Form):
    name = forms.CharField(max_length=81, help_text="Lowercase, like #general or #release-2.")
    topic = forms.CharField(max_length=250, required=False)


class MessageForm(forms.Form):
    # The byte limit is the service's; this only stops a form from posting megabytes.
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), strip=False, max_length=200_000
    )
