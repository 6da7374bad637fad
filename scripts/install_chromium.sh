#!/usr/bin/env bash
# Install headless Chromium (Debian package `chromium`) for the UI test, unless it is already there.
# Idempotent: does nothing when /usr/bin/chromium exists. Needs root (or sudo) for apt-get.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "install_chromium: /usr/bin/chromium already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_chromium: not root and no sudo; the UI test will be skipped" >&2
        exit 0
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium: apt-get not found (not Debian/Ubuntu); the UI test will be skipped" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "install_chromium: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
