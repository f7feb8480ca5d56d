"""Offline builder of the harness image (`ozweb-harness:local`): a build tool, not Django code.

    python -m harness_image [--tag TAG] [--force]      # or: python manage.py build_harness_image

It imports nothing from `apps` or Django. `constants` holds the image's layout (agent uid, home,
workspace, agents directory, tag), which the sandbox code imports from here.
"""

from __future__ import annotations

from .build import HarnessImageError, build_harness_image, harness_image_inputs_hash

__all__ = ["HarnessImageError", "build_harness_image", "harness_image_inputs_hash"]
