#!/usr/bin/env bash
# Installs Debian's Chromium when it is missing: `make test` drives the staff console
# in a real headless browser (Playwright for Python with executable_path=/usr/bin/chromium;
# Playwright's own browser download is never used), with a Chinese font (Debian's
# fonts-wqy-microhei) so that the screenshots the tests save are readable.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; then
  exit 0
fi
echo "installing Chromium and a Chinese font (Debian packages chromium, fonts-wqy-microhei) for the console's browser tests"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "error: /usr/bin/chromium is not installed and this user cannot install it." >&2
    echo "       Install the Debian package 'chromium' (apt-get install chromium)." >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei >/dev/null
[ -x /usr/bin/chromium ]
