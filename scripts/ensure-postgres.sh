#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when it is missing: `make test` runs the
# database tests against a real server as well as SQLite. The tests start
# their own throwaway cluster (bot/testing/postgres.py); nothing runs as a service.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "${VETBOT_PG_BINDIR:-}" ]; then
  exit 0
fi
echo "installing PostgreSQL (Debian package postgresql) for the database tests"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "error: PostgreSQL is not installed and this user cannot install it." >&2
    echo "       Install the Debian package 'postgresql' (apt-get install postgresql)" >&2
    echo "       or point VETBOT_PG_BINDIR at a PostgreSQL bin directory." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The package starts a cluster of its own; the tests do not need it.
$SUDO service postgresql stop >/dev/null 2>&1 || true
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
