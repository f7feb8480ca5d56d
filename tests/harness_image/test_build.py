"""The harness image build tool: Django-free, and a no-op in well under a second when its
inputs have not changed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from harness_image import build_harness_image, harness_image_inputs_hash
from harness_image.build import LABEL_INPUTS

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_tool_imports_nothing_from_django_or_the_apps():
    script = (
        "import sys, harness_image, harness_image.__main__\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'apps', 'ozweb'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


@pytest.mark.docker
def test_an_up_to_date_image_is_reused_in_well_under_a_second(harness_image: str):
    started = time.monotonic()
    tag = build_harness_image(tag=harness_image, log=lambda line: None)
    elapsed = time.monotonic() - started

    assert tag == harness_image
    assert elapsed < 1.0
    labels = docker.from_env().images.get(tag).labels
    assert labels[LABEL_INPUTS] == harness_image_inputs_hash()
