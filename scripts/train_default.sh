#!/usr/bin/env bash
# Reproduce the shipped model (v0.2.0) and its BYOL-A ablation, then evaluate both.
# Same corpus, seed, batch, steps, views and dropout draws for both runs; only the negative term
# differs. The release is 2,000 steps x 32 crops = 64,000 crops at lr 1e-4: the step-2,000 snapshot
# of a 500,000-crop run (scripts/train_snapshot_pair.sh, RUNS=$DATA/runs3), whose later snapshots
# lost pitch class (docs/training.md). STEPS=15625 LR=3e-4 reproduces the first 500k pair.
# Resumable: rerun the same command after a stop (each run continues from its checkpoint; RUNS holds
# checkpoints, outside the repository).
# STOP_AFTER=MIN stops both runs after that many minutes of this invocation (checkpointed). A finished arm
# (its model folder written) is skipped, and the remaining one gets all the cores (threads do not change the recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/work/data}
RUNS=${RUNS:-$DATA/runs-release}
STEPS=${STEPS:-2000}
python3 scripts/data/build_corpus.py --out "$DATA/corpus"      # pretraining audio (Debian packages)
python3 scripts/data/build_devsets.py --out "$DATA/devsets"    # labelled dev sets (not in the corpus)
common=(--cache-dir "$DATA/melcache" --steps "$STEPS" --batch-size 32 --lr "${LR:-1e-4}" --seed 42 --balance-folders)
[ -n "${STOP_AFTER:-}" ] && common+=(--stop-after "$STOP_AFTER")
declare -A ARMS=([audioembed-base]="--negatives freq --neg-candidates 4" [audioembed-byola]="--negatives none")
# Build the log-mel cache once (first run), then the unfinished runs side by side, the cores shared out.
audioembed pretrain "$DATA/corpus/audio" -o "$RUNS/unused" --cache-only --cache-dir "$DATA/melcache"
todo=(); for name in "${!ARMS[@]}"; do [ -f "$RUNS/$name/config.json" ] || todo+=("$name"); done
threads=$(( $(nproc) / (${#todo[@]} > 0 ? ${#todo[@]} : 1) )); [ "$threads" -ge 1 ] || threads=1
for name in "${todo[@]}"; do
  resume=(); [ -f "$RUNS/$name.checkpoints/last.pt" ] && resume=(--resume)
  # shellcheck disable=SC2086
  audioembed pretrain "$DATA/corpus/audio" -o "$RUNS/$name" ${ARMS[$name]} "${common[@]}" --threads "$threads" "${resume[@]}" 2>>"$RUNS/$name.log" &
done
wait
[ -f "$RUNS/audioembed-base/config.json" ] && [ -f "$RUNS/audioembed-byola/config.json" ] || exit 0
OPENBLAS_NUM_THREADS=1 audioembed evaluate "$DATA"/devsets/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
    -m "$RUNS/audioembed-base" -m "$RUNS/audioembed-byola" --baselines logmel-stats,random-init --json "$RUNS/evaluation.json"
