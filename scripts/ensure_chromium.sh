#!/usr/bin/env bash
# The browser tests drive Debian's chromium (no browser download). Install it when missing and we can.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium not found: install Debian's 'chromium' package to run the browser tests" >&2
fi
