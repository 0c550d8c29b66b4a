#!/usr/bin/env bash
# Quality v0.4's table (docs/experiments/readout.md): every finished run of scripts/train_v04.sh beside v0.3.0 read out
# both ways, random-init per architecture and readout, and log-mel statistics, on the four development sets, then the
# mean ± std over training seeds per arm and each arm against the release rule (scripts/summarize_seeds.py).
# Usage:  DATA=/path/to/data scripts/eval_v04.sh      (DATA holds devsets/ and runs-v04/; writes $DATA/runs-v04/eval-v04.json)
# Runs evaluated before are read from the embedding cache ($DATA/evalcache), so rerunning as runs finish is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?set DATA to the folder holding devsets/ and runs-v04/}"
RUNS=${RUNS:-$DATA/runs-v04}
V030_COMMIT=552dc0dea754e92adf7221522a7716a29c245002  # models/audioembed-base at v0.3.0's weights (v0.3.1's folder)
# v0.3.0, the release rule's reference, as it was shipped (models/ holds whatever ships after it).
v030=$DATA/models/audioembed-base-v0.3.0
if [ ! -f "$v030/config.json" ]; then
  mkdir -p "$v030"
  for f in config.json training.json model.safetensors model.onnx README.md; do
    git show "$V030_COMMIT:models/audioembed-base/$f" > "$v030/$f"
  done
fi
stacked=$DATA/models/v030-stacked
[ -f "$stacked/config.json" ] || python3 scripts/readout_folder.py "$v030" -o "$stacked" --readout stacked
models=(-m "$v030" -m "$stacked")
for run in "$RUNS"/*-s[0-9]*; do
  [ -f "$run/config.json" ] && models+=(-m "$run")
done
OPENBLAS_NUM_THREADS=1 nice -n 10 audioembed evaluate "$DATA"/devsets/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
  "${models[@]}" --baselines logmel-stats,random-init --cache "$DATA/evalcache" --json "$RUNS/eval-v04.json"
python3 scripts/summarize_seeds.py "$RUNS/eval-v04.json" --runs "$RUNS" --rule "$v030"
