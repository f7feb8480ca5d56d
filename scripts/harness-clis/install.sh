#!/usr/bin/env bash
# Install the pinned harness CLIs (docker/harness-clis.txt) into var/harness-clis/ for host-side
# tests (tests/harnesses/test_real_clis.py). Packages already installed at the pinned version are
# skipped, so running it again is cheap. Binaries end up in var/harness-clis/node_modules/.bin/.
#
# Usage: scripts/harness-clis/install.sh [--force]
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pins_file="$repo_root/docker/harness-clis.txt"
prefix="${HARNESS_CLIS_DIR:-$repo_root/var/harness-clis}"
force=0
[ "${1:-}" = "--force" ] && force=1

command -v npm >/dev/null || { echo "install.sh: npm is required" >&2; exit 1; }
mkdir -p "$prefix"
# A package.json of our own keeps npm from walking up into the repo looking for one.
[ -f "$prefix/package.json" ] || echo '{"name": "ozweb-harness-clis", "private": true}' > "$prefix/package.json"

installed_version() {
  local manifest="$prefix/node_modules/$1/package.json"
  [ -f "$manifest" ] || return 0
  node -e 'process.stdout.write(require(process.argv[1]).version || "")' "$manifest"
}

wanted=()
while IFS= read -r line || [ -n "$line" ]; do
  spec="${line%%#*}"
  spec="$(echo "$spec" | tr -d '[:space:]')"
  [ -n "$spec" ] || continue
  name="${spec%@*}"      # strip the version; keeps the scope's leading "@"
  version="${spec##*@}"
  if [ "$force" -eq 0 ] && [ "$(installed_version "$name")" = "$version" ]; then
    echo "ok      $name@$version"
  else
    echo "install $name@$version"
    wanted+=("$spec")
  fi
done < "$pins_file"

if [ "${#wanted[@]}" -gt 0 ]; then
  npm install --prefix "$prefix" --no-audit --no-fund --save-exact --loglevel=error "${wanted[@]}"
fi
ls "$prefix/node_modules/.bin"
