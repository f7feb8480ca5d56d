from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"

    def ready(self) -> None:
        from apps.core.registry import register_event_handler
        from apps.notifications.inbox import inbox_on_event
        from apps.notifications.webhooks import webhooks_on_event

        # Two handlers: a failing inbox write never holds back a team's webhooks, nor the reverse.
        register_event_handler(inbox_on_event)
        register_event_handler(webhooks_on_event)
