#!/usr/bin/env bash
# Runs the tests of `make unit` with the wall clock set to a given moment, Beijing
# time, by Debian's faketime (installed here when missing): no test may depend on
# the real clock for "today", a weekday, opening hours or the end of a month or year.
#
#   scripts/test-clock.sh                            00:10 Beijing time on 2026-12-08
#   scripts/test-clock.sh "2026-12-31 23:55"         New Year's Eve, five minutes to midnight
#   scripts/test-clock.sh "2026-12-08 00:10" tests/console    only these tests
#   make test-clock AT="2026-12-31 23:55"
#
# The moment is Beijing wall-clock time whatever the machine's time zone, and the
# clock runs on from it: the whole run is shifted by one offset, so pytest, the
# PostgreSQL server the tests start and any subprocess read the same clock. Two
# things are left on the real clock: the monotonic clock (asyncio's timers hang
# otherwise) and Redis, which does not start under libfaketime (its allocator
# calls clock_gettime while libfaketime loads). Redis is started here, before
# faketime, and handed to the tests as VETBOT_TEST_REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

AT="${1:-${AT:-2026-12-08 00:10:00}}"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- tests

if ! command -v faketime >/dev/null; then
  echo "installing faketime (Debian package faketime) for the clock tests"
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || true
    $SUDO apt-get install -y -qq --no-install-recommends faketime >/dev/null || true
  fi
  if ! command -v faketime >/dev/null; then
    echo "error: faketime is not installed and could not be installed;" >&2
    echo "       install the Debian package 'faketime' (apt-get install faketime)." >&2
    exit 1
  fi
fi
scripts/ensure-postgres.sh
scripts/ensure-redis.sh

if ! target=$(date -d "TZ=\"Asia/Shanghai\" $AT" +%s 2>/dev/null); then
  echo "error: '$AT' is not a moment (Beijing time, e.g. \"2026-12-31 23:55\")." >&2
  exit 2
fi
offset=$(printf '%+d' $(( target - $(date +%s) )))  # seconds: FAKETIME="+1234" or "-1234"
unset FAKETIME FAKETIME_ONLY_CMDS FAKETIME_SKIP_CMDS FAKETIME_DONT_RESET
export FAKETIME_DONT_FAKE_MONOTONIC=1
fake() { faketime -f "$offset" "$@"; }

# The clock the tests will read, checked before anything runs on it.
seen=$(fake date +%s)
if [ $(( seen - target )) -lt -5 ] || [ $(( seen - target )) -gt 5 ]; then
  echo "error: faketime did not set the clock (wanted $target, got $seen)." >&2
  exit 1
fi
echo "test-clock: the tests start at $(TZ=Asia/Shanghai fake date '+%Y-%m-%d %H:%M:%S %a') Beijing time"

# Redis, on the real clock (see above), for the whole run.
redis_dir=$(mktemp -d -t vetbot-redis-XXXXXX)
redis_port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$redis_dir" \
  --daemonize no >/dev/null 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$redis_dir"' EXIT
for _ in $(seq 100); do
  [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] || { echo "error: redis-server did not start" >&2; exit 1; }

export PYTHONHASHSEED="${PYTHONHASHSEED:-0}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false
export VETBOT_REQUIRE_POSTGRES=1 VETBOT_REQUIRE_REDIS=1 VETBOT_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
fake .venv/bin/pytest -q -m "not e2e" "$@"
