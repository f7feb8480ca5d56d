#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`. Idempotent.
#
#  1. If `docker info` already answers (DOCKER_HOST or /var/run/docker.sock): exit 0.
#  2. Otherwise install Debian's docker.io (dockerd, containerd, runc) if dockerd is missing,
#     start dockerd in the background and wait for it (log: /var/log/ozweb-dockerd.log).
#     Storage drivers are tried in order: overlay2, fuse-overlayfs, vfs.
#
# Flags used by default on a sandboxed host (no systemd, no bridge/NAT needed because run
# containers use --network none and reach ozweb through their worker's unix sockets):
#     --bridge=none --iptables=false --ip6tables=false --storage-driver=<first that works>
#
# Environment overrides:
#   OZWEB_DOCKERD_FLAGS     extra flags appended to dockerd's command line
#   OZWEB_DOCKERD_NETWORK   "host-only" (default: --bridge=none --iptables=false) or
#                           "bridge" (let dockerd create docker0 and manage iptables)
#   OZWEB_DOCKERD_STORAGE   force one storage driver (overlay2, fuse-overlayfs, vfs)
#   OZWEB_DOCKERD_WAIT      seconds to wait for the engine to answer (default 60)
#   OZWEB_DOCKERD_LOG       log file (default /var/log/ozweb-dockerd.log)
set -euo pipefail

LOG=${OZWEB_DOCKERD_LOG:-/var/log/ozweb-dockerd.log}
WAIT=${OZWEB_DOCKERD_WAIT:-60}
NETWORK_MODE=${OZWEB_DOCKERD_NETWORK:-host-only}
PIDFILE=/var/run/ozweb-dockerd.pid

say() { echo "ensure-engine: $*" >&2; }
die() { echo "ensure-engine: ERROR: $*" >&2; exit 1; }

# The docker CLI: prefer whatever is on PATH (e.g. /usr/local/bin/docker), else docker.io's.
DOCKER_CLI=$(command -v docker || true)

engine_up() {
    [ -n "$DOCKER_CLI" ] || return 1
    timeout 10 "$DOCKER_CLI" info >/dev/null 2>&1
}

if engine_up; then
    say "engine already answers (${DOCKER_HOST:-unix:///var/run/docker.sock})"
    exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer and is not a local socket; refusing to start a local engine"
fi
[ "$(id -u)" = 0 ] || die "no engine answers and starting one needs root (run as root or set DOCKER_HOST)"

# --- 1. binaries -------------------------------------------------------------------------
# Use the daemon binaries from Debian's docker.io, by absolute path, so that a stray
# dockerd/containerd elsewhere on PATH is never picked up.
DOCKERD=/usr/sbin/dockerd
need_install=0
for bin in "$DOCKERD" /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc; do
    [ -x "$bin" ] || need_install=1
done
if [ "$need_install" = 1 ]; then
    say "installing Debian's docker.io (dockerd, containerd, runc)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    # iptables comes with docker.io as a dependency; named so that OZWEB_DOCKERD_NETWORK=bridge
    # works. fuse-overlayfs is installed later, only if overlay2 fails.
    apt-get install -y -q --no-install-recommends docker.io iptables >/dev/null \
        || die "apt-get install docker.io failed"
fi
[ -x "$DOCKERD" ] || die "$DOCKERD not found after installing docker.io"
[ -n "$DOCKER_CLI" ] || DOCKER_CLI=$(command -v docker || true)
[ -n "$DOCKER_CLI" ] || die "no docker CLI found"
# dockerd looks up containerd, containerd-shim-runc-v2, runc and docker-init on PATH.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# --- 2. a dockerd of ours that is still starting, or dead -------------------------------
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd (pid $(cat "$PIDFILE")) is running; waiting for it to answer"
    for _ in $(seq "$WAIT"); do engine_up && exit 0; sleep 1; done
    die "dockerd pid $(cat "$PIDFILE") is running but does not answer; see $LOG"
fi
# A dockerd we did not start (e.g. systemd's) that does not answer: do not fight it.
if pgrep -x dockerd >/dev/null 2>&1; then
    die "a dockerd process exists (pid $(pgrep -x dockerd | tr '\n' ' ')) but 'docker info' fails; see $LOG"
fi
rm -f /var/run/docker.pid "$PIDFILE"

# --- 3. flags -----------------------------------------------------------------------------
base_flags=(--host=unix:///var/run/docker.sock)
case "$NETWORK_MODE" in
    host-only) base_flags+=(--bridge=none --iptables=false --ip6tables=false) ;;
    bridge) ;;
    *) die "OZWEB_DOCKERD_NETWORK must be host-only or bridge, not $NETWORK_MODE" ;;
esac
# cgroups: v1 hierarchies mounted without systemd -> the cgroupfs driver (dockerd's default
# without systemd); pure cgroup v2 works with cgroupfs too.
base_flags+=(--exec-opt native.cgroupdriver=cgroupfs)
# shellcheck disable=SC2206
extra_flags=(${OZWEB_DOCKERD_FLAGS:-})

if [ -n "${OZWEB_DOCKERD_STORAGE:-}" ]; then
    drivers=("$OZWEB_DOCKERD_STORAGE")
else
    drivers=(overlay2 fuse-overlayfs vfs)
fi

start_with() {
    local driver=$1
    if [ "$driver" = fuse-overlayfs ] && ! command -v fuse-overlayfs >/dev/null 2>&1; then
        say "installing fuse-overlayfs"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fuse-overlayfs >/dev/null 2>&1 \
            || { say "could not install fuse-overlayfs"; return 1; }
    fi
    say "starting dockerd --storage-driver=$driver ${base_flags[*]} ${extra_flags[*]} (log: $LOG)"
    {
        echo "=== $(date -Is) ensure-engine: dockerd --storage-driver=$driver ${base_flags[*]} ${extra_flags[*]}"
    } >>"$LOG"
    setsid nohup "$DOCKERD" --storage-driver="$driver" "${base_flags[@]}" "${extra_flags[@]}" \
        >>"$LOG" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PIDFILE"
    for _ in $(seq "$WAIT"); do
        if engine_up; then
            say "engine up (pid $pid, storage driver $driver)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            say "dockerd exited while starting with storage driver $driver:"
            tail -n 5 "$LOG" | sed 's/^/    /' >&2
            rm -f "$PIDFILE"
            return 1
        fi
        sleep 1
    done
    say "dockerd (pid $pid) did not answer within ${WAIT}s; stopping it"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 15); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    return 1
}

for driver in "${drivers[@]}"; do
    if start_with "$driver"; then
        exit 0
    fi
done
die "could not start dockerd with any storage driver (${drivers[*]}); see $LOG"
