#!/usr/bin/env bash
# Installs Debian's Redis server when it is missing: `make test` tests the Redis
# backends of the WeChat gateway (nonces, retries' replies, the access token) against
# a real server. The tests start their own throwaway redis-server on a free port
# (tests/wechat/conftest.py); nothing runs as a service.
set -euo pipefail
if command -v redis-server >/dev/null; then
  exit 0
fi
echo "installing Redis (Debian package redis-server) for the gateway tests"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "error: redis-server is not installed and this user cannot install it." >&2
    echo "       Install the Debian package 'redis-server' (apt-get install redis-server)." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package may start a server of its own; the tests do not need it.
$SUDO service redis-server stop >/dev/null 2>&1 || true
command -v redis-server >/dev/null
