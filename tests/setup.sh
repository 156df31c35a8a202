#!/usr/bin/env bash
# What the test suite needs beyond the package: the test and `local` extras (llama-cpp-python builds from
# source, ~11 min the first time; pip caches the wheel) and Debian's chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -e ".[test,local]"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "tests/setup.sh: not root, so chromium is not installed; the browser test will be skipped" >&2
  fi
fi
