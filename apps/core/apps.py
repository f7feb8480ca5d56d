from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.urls import register_converter

        from apps.core import throttling  # noqa: F401 -- registers the check of its settings
        from apps.core.ids import IdConverter

        # Before any URLconf is loaded (Django loads them lazily, after every app is ready).
        register_converter(IdConverter, "id")
