#!/usr/bin/env bash
# Install what the tests need into .venv (from nothing) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch is pinned to the CPU build here: an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
# hearvalidator (13 kB) declares tensorflow, which the checks of a torch model never use: skip its deps.
.venv/bin/python -m pip install -q --no-deps "hearvalidator>=2021.0.2"
exec .venv/bin/python -m pytest -q "$@"
