#!/usr/bin/env bash
# The README's main job as a new user runs it: `pip install .` into a fresh venv (no torch), then
# `audioembed embed examples/ -o vectors/`. Checks that every example got a vector and that auto chose ONNX Runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip
"$WORK/venv/bin/python" -m pip install -q .
cp -r examples "$WORK/examples"
cd "$WORK"  # the README's command, run where the clone's files are not importable
venv/bin/audioembed embed examples/ -o vectors/
test "$(find vectors -name '*.npy' | wc -l)" -eq "$(find examples -name '*.wav' -o -name '*.flac' | wc -l)"
HF_HUB_OFFLINE=1 venv/bin/audioembed info | grep -E '^backend +onnx \(cpu\)$'
venv/bin/python -c "import sys, audioembed; sys.exit('torch' in sys.modules)"
echo "check_install: ok"
