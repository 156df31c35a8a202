#!/usr/bin/env bash
# README command 2: install what the tests need, then the unit tier (no model, no Chroma, no network; under a
# minute), then the integration tier (the real model, Chroma, the wheel, Streamlit and chromium).
#   bash tests/run.sh          without the heavy tier (llama-cpp-python's source build, torch): those tests skip
#   bash tests/run.sh --full   everything; what .ci/run runs (then ruff and mypy)
# The integration tier runs one pytest-xdist worker per core (at most 4), each test file whole on one worker so a
# module's server or browser starts once: on 2 shared cores, 940 s of tests took 499 s of wall (docs/testing.md).
# Each phase prints a dated line, so a slow run shows which phase took the time.
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { echo "== tests/run.sh: $1 ($(date -u +%H:%M:%S))"; }
phase "install (tests/setup.sh ${1:-})"
bash tests/setup.sh "$@"
phase "unit tier"
python3 -m pytest -m unit
phase "integration tier"
python3 -m pytest -m integration -n auto --maxprocesses 4 --dist loadfile
phase "done"
