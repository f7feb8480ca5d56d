"""Whether a delegated run's parent is waiting for its result in a `delegate(wait=true)` call.

While it waits, the result comes back through that call: the run's outcome, posted to the
parent when the run ends (apps.runs.transitions), is then marked delivered instead of waking
the parent again.
"""

from __future__ import annotations

from collections.abc import Collection

from apps.runs.models import Run


def runs_parent_waiting_set(*, run_ids: Collection[int], waiting: bool) -> None:
    """Mark these (delegated) runs as awaited by their parent, or no longer awaited."""
    if run_ids:
        Run.objects.filter(pk__in=list(run_ids)).update(parent_waiting=waiting)
