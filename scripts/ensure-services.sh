#!/usr/bin/env bash
# PostgreSQL and Redis on 127.0.0.1 for the tests: start them if installed but stopped.
# Exits non-zero when one cannot be reached (in CI that fails the run).
set -uo pipefail

up() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

if ! up 5432 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! up 6379 && command -v redis-server >/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
fi
for _ in $(seq 1 20); do up 5432 && up 6379 && break; sleep 0.5; done

status=0
up 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; status=1; }
up 6379 || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; status=1; }
exit $status
