from django.apps import AppConfig


class AgentapiConfig(AppConfig):
    name = "apps.agentapi"
    label = "agentapi"
