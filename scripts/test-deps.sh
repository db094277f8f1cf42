#!/usr/bin/env bash
# The programs the test suite starts beside Parley: redis-server and redis-cli (Redis and Redis
# Cluster), PostgreSQL's initdb and postgres, and chromium (the browser tests). Run by
# `npm test` before the suite. When some are missing it installs their Debian packages as
# root (one `apt-get update`, one `apt-get install`), and otherwise stops at once with the
# one command that installs them, so the suite never runs without them.
set -euo pipefail

# "program:package" pairs. The test helpers look on PATH and in /usr/bin, /usr/sbin,
# /usr/local/bin (tools/devservers/redis.ts).
PROGRAMS=("redis-server:redis-server" "redis-cli:redis-tools")

have() {
  local dir
  local IFS=:
  for dir in $PATH /usr/bin /usr/sbin /usr/local/bin; do
    [[ -n "$dir" && -f "$dir/$1" && -x "$dir/$1" ]] && return 0
  done
  return 1
}

missing=()
for pair in "${PROGRAMS[@]}"; do
  have "${pair%%:*}" || missing+=("${pair#*:}")
done
# PostgreSQL's server programs live in /usr/lib/postgresql/<version>/bin, not on PATH
# (tools/devservers/postgres.ts looks on PATH first, then there).
if ! { have initdb && have postgres; } && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  missing+=("postgresql")
fi
# The browser tests run the binary named by PARLEY_CHROMIUM, Debian's chromium by default.
chromium="${PARLEY_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -f "$chromium" || ! -x "$chromium" ]]; then
  if [[ -n "${PARLEY_CHROMIUM:-}" ]]; then
    echo "test-deps: PARLEY_CHROMIUM=$chromium is not an executable file" >&2
    exit 1
  fi
  missing+=("chromium")
fi

((${#missing[@]} == 0)) && exit 0

install="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: the tests need ${missing[*]} (Debian package names); install them with this system's package manager" >&2
  exit 1
fi
if ((EUID != 0)); then
  echo "test-deps: the tests need Debian packages that are not installed: ${missing[*]}" >&2
  echo "Install them, then run the tests again:" >&2
  echo "  sudo sh -c '$install'" >&2
  exit 1
fi
echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
