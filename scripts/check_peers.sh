#!/usr/bin/env bash
# The evaluation's pretrained peers (resemblyzer, crepe-tiny), installed as docs/evaluate.md says, run on
# the small generated dataset of tests/test_eval.py: CI checks that their code works. The figures in the
# README's table need the dev sets (scripts/data/build_devsets.py), which CI does not build.
# About 150 MB of downloads (torchcrepe's wheel alone is 72 MB; librosa brings numba). Needs .venv (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# --no-deps: resemblyzer asks for `webrtcvad` (an sdist that needs a compiler; webrtcvad-wheels ships the same
# module) and the obsolete `typing` backport; torchcrepe asks for torchaudio, which audioembed never uses.
.venv/bin/python -m pip install -q --no-deps resemblyzer torchcrepe
.venv/bin/python -m pip install -q webrtcvad-wheels librosa resampy tqdm
AUDIOEMBED_REQUIRE_PEERS=1 exec .venv/bin/python -m pytest -q tests/test_eval.py -k peers
