from __future__ import annotations

from django.db import models

from apps.runs.models import Run


class RunToken(models.Model):
    """The credential a run's sandbox uses to call ozweb as its agent, in its team.

    Only a hash is stored. The token works while its run is active: it stops working the
    moment the run ends, however it ends.
    """

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="token")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"token of {self.run}"
