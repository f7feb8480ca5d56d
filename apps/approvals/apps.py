from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "apps.approvals"
    label = "approvals"

    def ready(self) -> None:
        from apps.approvals.services import approvals_expire_for_ended_run
        from apps.core.registry import register_event_handler

        register_event_handler(approvals_expire_for_ended_run)
