#!/usr/bin/env bash
# Set up a fresh Debian 12 machine for seawall: system packages and a venv.
#
#   scripts/setup.sh           runtime: PostgreSQL 15 client/server binaries, age, zstd
#   scripts/setup.sh --test    plus what the test suite drives for real
#                              (Prometheus, promtool, faketime, openssl, pgBackRest, Barman)
#
# The venv is made with /usr/bin/python3 (not a pyenv python under /root),
# because PostgreSQL's archive_command runs `seawall postgres wal-push` as the
# postgres user, who cannot enter /root.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

pkgs=(postgresql-15 postgresql-client-15 age zstd python3-venv python3-dev openssl)
bins=(/usr/lib/postgresql/15/bin/pg_dump /usr/bin/age /usr/bin/zstd /usr/bin/openssl)
if (( want_test )); then
  pkgs+=(prometheus prometheus-alertmanager faketime pgbackrest barman curl)
  bins+=(/usr/bin/prometheus /usr/bin/promtool /usr/bin/faketime /usr/bin/pgbackrest /usr/bin/curl)
fi
missing=0
for b in "${bins[@]}"; do [[ -x "$b" ]] || missing=1; done
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing=1
if (( missing )); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  # The Debian package starts a cluster and Prometheus we do not use; stop them.
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

if [[ ! -x .venv/bin/python ]]; then
  /usr/bin/python3 -m venv .venv
fi
log=$(mktemp)
target='.'
(( want_test )) && target='.[test]'
if ! { .venv/bin/python -m pip install -q --upgrade pip && \
       .venv/bin/python -m pip install -q -e "$target"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: pip install failed (log above)" >&2
  exit 1
fi
rm -f "$log"
# An editable install compiles nothing; a normal pip install would. Without
# .pyc files every archive_command run (a fresh interpreter per WAL segment)
# recompiles the modules it imports, and PostgreSQL's user may not be allowed
# to write them (docs/wal-archiving.md).
.venv/bin/python -m compileall -q src/seawall >/dev/null
