#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, then runs lint, types and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v haproxy >/dev/null || need_apt+=(haproxy)
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v zstd >/dev/null || need_apt+=(zstd)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
# the browser tests drive Debian's Chromium through Playwright (no downloaded browser)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "missing system packages: ${need_apt[*]} (run: sudo apt-get install ${need_apt[*]})" >&2
    exit 2
  fi
fi
# Debian starts a cluster on install; tests start their own on free loopback ports.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for c in $(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster "$c" main stop 2>/dev/null || true; done
fi

python3 -m pip install -q -e '.[dev]'
python3 -m ruff check src tests bench
python3 -m mypy
# -n 2: the suite is sized for 2 cores; exit code 5 (no tests collected) fails the run.
python3 -m pytest -n "${PYTEST_WORKERS:-2}" -p no:cacheprovider "$@"
