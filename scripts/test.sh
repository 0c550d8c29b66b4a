#!/usr/bin/env bash
# Install what the tests need into .venv (from nothing) and run the test suite, without the slow integration
# checks (pytest -m slow runs those; .ci/run runs both). Arguments go to pytest: a later -m replaces "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH=torch==2.13.0
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch: the CPU build from PyTorch's CPU index (the standard index on Linux gives the multi-GB CUDA build),
# where that index answers within seconds; where it does not (offline, a mirror only), the pinned version
# from the configured index, without waiting on pip's retries.
if timeout 10 .venv/bin/python - "$TORCH_CPU_INDEX" 2>/dev/null <<'EOF'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/torch/", timeout=5)
EOF
then
    .venv/bin/python -m pip install -q --timeout 30 --retries 1 --index-url "$TORCH_CPU_INDEX" "$TORCH" \
        || .venv/bin/python -m pip install -q "$TORCH"
else
    echo "note: $TORCH_CPU_INDEX is unreachable; installing $TORCH from the configured index" >&2
    .venv/bin/python -m pip install -q "$TORCH"
fi
.venv/bin/python -m pip install -q -e ".[test]"
# hearvalidator (13 kB) declares tensorflow, which the checks of a torch model never use: skip its deps.
.venv/bin/python -m pip install -q --no-deps "hearvalidator>=2021.0.2"
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
