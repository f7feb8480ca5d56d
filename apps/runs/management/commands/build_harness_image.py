"""python manage.py build_harness_image: the harness image, built offline and cached.

A thin wrapper of the `harness_image` build tool that takes the tag from the settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from harness_image import HarnessImageError, build_harness_image


class Command(BaseCommand):
    help = (
        "Build the harness image from Debian's packages and the npm registry (no container "
        "registry needed) and tag it; a second call with nothing changed takes seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tag", default=settings.OZWEB_HARNESS_IMAGE)
        parser.add_argument("--force", action="store_true", help="Rebuild every layer.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tag = build_harness_image(
                tag=options["tag"], force=options["force"], log=self.stdout.write
            )
        except HarnessImageError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(tag))
