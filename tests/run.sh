#!/usr/bin/env bash
# README command 2: install what the tests need, then the unit tier (no model, no Chroma, no network; under a
# minute), then the integration tier (the real model, Chroma, the wheel, Streamlit and chromium).
#   bash tests/run.sh          without the heavy tier (llama-cpp-python's source build, torch): those tests skip
#   bash tests/run.sh --full   everything; what .ci/run runs (then ruff and mypy)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh "$@"
python3 -m pytest -m unit
python3 -m pytest -m integration
