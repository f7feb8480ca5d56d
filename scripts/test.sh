#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# Real services: PostgreSQL and Redis on 127.0.0.1 (started if installed but down), headless
# Chromium from Debian. With CI=true a missing service fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\n==> %s\n' "$*"; }

log "Python dependencies"
test -x .venv/bin/python || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need root to apt-get install $*" >&2; return 1; fi
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

log "Chromium for the browser test"
command -v chromium >/dev/null || apt_install chromium

log "Harness CLIs (pinned, from the npm registry)"
bash scripts/harness-clis/install.sh

log "Docker engine and the harness image (built offline, cached)"
bash scripts/docker/ensure-engine.sh
.venv/bin/python manage.py build_harness_image

log "PostgreSQL and Redis"
bash scripts/ensure-services.sh

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ozweb}
export OZWEB_TEST_REDIS_URL=${OZWEB_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
export OZWEB_TEST_POSTGRES_URL=${OZWEB_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
export OZWEB_CHROMIUM=${OZWEB_CHROMIUM:-$(command -v chromium || true)}

log "Test suite on PostgreSQL"
.venv/bin/pytest "$@"

log "Embedded-mode tests on SQLite"
env -u DATABASE_URL .venv/bin/pytest -q -m "not browser" tests/threads tests/core tests/agentapi tests/collab tests/api
