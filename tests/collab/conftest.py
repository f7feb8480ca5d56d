import pytest


@pytest.fixture(autouse=True)
def collab_settings(settings, tmp_path):
    settings.OZWEB_RUN_DISPATCH = "manual"
    settings.OZWEB_SANDBOX = "local"
    settings.OZWEB_AGENT_DATA_DIR = str(tmp_path / "agents")
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def program(tmp_path):
    import sys
    import textwrap

    counter = iter(range(1000))

    def write(source: str) -> str:
        path = tmp_path / f"program_{next(counter)}.py"
        path.write_text(textwrap.dedent(source))
        return f"{sys.executable} -u {path}"

    return write
