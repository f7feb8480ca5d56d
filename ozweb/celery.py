"""The Celery app (scaled mode): `celery -A ozweb worker -B` runs runs and the reconciler."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ozweb.settings")

app = Celery("ozweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
