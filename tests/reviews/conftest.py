import pytest

from tests.reviews.changes import CALC, open_change


@pytest.fixture(autouse=True)
def repos_dir(settings, tmp_path) -> None:
    """Bare repositories and stored artifact bytes in this test's directory."""
    settings.OZWEB_REPOS_DIR = str(tmp_path / "repos")
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def change(team, agent, thread, tmp_path):
    """An open change by @coder in #general: calc.py's f2 returns a - b (v1)."""
    fixed = CALC.replace("def f2(a, b):\n    return a + b", "def f2(a, b):\n    return a - b")
    change, work = open_change(
        team=team, agent=agent, tmp_path=tmp_path, thread=thread,
        base_files={"calc.py": CALC, "README.md": "calc\n"}, files={"calc.py": fixed},
    )  # fmt: skip
    change.work = work  # type: ignore[attr-defined]  # for tests that add versions
    return change


# Running a `command` agent in a local process, as the runs tests do (test_delivery.py).
from tests.runs.conftest import (  # noqa: E402, F401
    background,
    command_agent,
    local_sandbox,
    program,
    run_settings,
)
