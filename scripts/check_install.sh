#!/usr/bin/env bash
# The README's main job as a new user runs it: `pip install .` into a fresh venv (no torch), then
# `audioembed embed examples/ -o vectors/`. Checks that every example got a vector and that auto chose ONNX Runtime;
# then, offline, that the wheel's bundled weights load from site-packages and equal models/audioembed-base.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
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
HF_HUB_OFFLINE=1 venv/bin/audioembed info | grep -E '^backend +onnx \(cpu, f32\)$'
venv/bin/python -c "import sys, audioembed; sys.exit('torch' in sys.modules)"
# The weights bundled in the wheel, offline with an empty hub cache: found inside the installed package, and giving
# the same vectors as models/audioembed-base (and as the README's job wrote above).
HF_HUB_OFFLINE=1 HF_HOME="$WORK/hf" venv/bin/python - "$REPO/models/audioembed-base" <<'EOF'
import importlib.util, sys
from pathlib import Path

import numpy as np

import audioembed
from audioembed import Embedder

package = Path(audioembed.__file__).resolve().parent
assert "site-packages" in package.parts, f"audioembed imported from {package}, not from the installed wheel"
assert importlib.util.find_spec("torch") is None, "the plain install must not need torch"
e = Embedder()
assert e.resolved.source == "bundled" and package in e.resolved.folder.parents, e.resolved
files = sorted(p for p in Path("examples").iterdir() if p.suffix in (".flac", ".wav"))
vectors = e.embed([str(p) for p in files])
np.testing.assert_array_equal(vectors, Embedder(sys.argv[1], backend="onnx").embed([str(p) for p in files]))
for path, vector in zip(files, vectors):
    np.testing.assert_allclose(np.load(Path("vectors") / (path.stem + ".npy")), vector, atol=1e-6)
print(f"check_install: {len(files)} examples embedded offline with the bundled weights ({e.resolved.folder})")
EOF
echo "check_install: ok"
