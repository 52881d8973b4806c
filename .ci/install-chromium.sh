#!/usr/bin/env bash
# Install Debian's `chromium` package for the end-to-end browser tests (tests/e2e/).
# Idempotent: when /usr/bin/chromium already runs, it does nothing and returns at once.
# Needs root (CI runs as root) or sudo. No browser is downloaded from anywhere but apt.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-chromium.sh: need root or sudo to run apt-get" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium

echo "installed: $("$CHROMIUM" --version 2>/dev/null)"
