"""The harness image's layout: what the image provides and the sandboxes rely on.

Defined here once; `apps.runs.sandboxes` (and the settings) import them. docker/Dockerfile, the
production definition, states the same layout in its own syntax.
"""

from __future__ import annotations

HARNESS_IMAGE = "ozweb-harness:local"  # the tag sandboxes run and build_harness_image() makes

# The unprivileged user the harness runs as, its $HOME, and its working directory. The content
# hashes that tell whether an image is up to date do not cover all of these: bump
# `build.RECIPE_VERSION` when you change one, so that every layer is rebuilt.
AGENT_UID = 1000
AGENT_GID = 1000
CONTAINER_HOME = "/home/agent"
CONTAINER_WORKSPACE = "/workspace"
# The model-free example agents (examples/agents), for the command harness ($OZWEB_AGENTS_DIR).
CONTAINER_AGENTS_DIR = "/opt/ozweb/agents"
