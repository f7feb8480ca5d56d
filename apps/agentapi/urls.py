"""/api/v1/agent/<verb>/: the agent verbs over REST (run tokens only)."""

from django.urls import path

from apps.agentapi.api import VERB_APIS, UnknownVerbApi

app_name = "agentapi"

urlpatterns = [
    *(path(f"{verb}/", view.as_view(), name=verb) for verb, view in VERB_APIS.items()),
    path("<str:verb>/", UnknownVerbApi.as_view(), name="unknown-verb"),
]
