#!/usr/bin/env bash
# Reproduce the shipped model and its BYOL-A ablation, then evaluate both (2-core CPU: ~1.5 h).
# Same corpus, seed, batch, steps and views for both runs; only the negative term differs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/work/data}
STEPS=${STEPS:-2000}
python3 scripts/data/build_corpus.py --out "$DATA/corpus"      # pretraining audio (Debian packages)
python3 scripts/data/build_devsets.py --out "$DATA/devsets"    # labelled dev sets (not in the corpus)
common=(--cache-dir "$DATA/melcache" --steps "$STEPS" --batch-size 32 --lr 3e-4 --seed 42 --threads 1)
# The two runs share the machine, one core each (resumable: rerun with --resume after a stop).
audioembed pretrain "$DATA/corpus/audio" -o runs/audioembed-base --negatives all "${common[@]}" &
audioembed pretrain "$DATA/corpus/audio" -o runs/audioembed-byola --negatives none "${common[@]}" &
wait
audioembed evaluate "$DATA"/devsets/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
    -m runs/audioembed-base -m runs/audioembed-byola --json runs/evaluation.json
