from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"

    def ready(self) -> None:
        # The lower layers reach runs only through these (apps/core/registry.py).
        from apps.core.registry import register_dispatcher, register_health_check
        from apps.runs.routing import RunDispatcher
        from apps.runs.sandboxes import docker_health, hardening_health

        register_dispatcher(RunDispatcher())
        register_health_check("docker", docker_health)
        register_health_check("sandbox_hardening", hardening_health)
