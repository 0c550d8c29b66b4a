#!/usr/bin/env bash
# Quality v0.4's candidates (docs/experiments/readout.md): v0.3.0's recipe (128,000 crops = 4,000 steps x 32, lr 1e-4,
# BYOL-A's frequency crop, pitch-shift negatives in a head of their own, balanced folders) with another encoder:
#   ARCH=audiontt2022           BYOL-A v2's encoder: 2 conv blocks, MLP 2,048 hidden, 2,048-d stacked output
#   ARCH=audiontt2020-stacked   v0.3.0's encoder trained for the stacked readout (1,024-d)
# Both arms of a seed side by side on a thread each: the negatives (`neg`) and plain BYOL-A (`none`).
# Usage:  DATA=/path/to/data ARCH=audiontt2022 SEED=42 [ARMS="neg none"] [STOP_AFTER=MIN] scripts/train_v04.sh
#   ARMS picks the arms to run (both by default): one arm alone fills a core another run has left free.
#   DATA holds corpus/ (scripts/data/build_corpus.py) and melcache/; runs go to $DATA/runs-v04/ARCH-sSEED-ARM.
# Resumable: rerun the same command (each arm continues from its checkpoint; a finished arm is skipped).
# Snapshots every 1,000 steps (32,000 crops); a lost checkpoint continues from the last one with --init-from.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?set DATA to the folder holding corpus/ and melcache/}"
ARCH=${ARCH:-audiontt2022}
SEED=${SEED:-42}
RUNS=${RUNS:-$DATA/runs-v04}
mkdir -p "$RUNS"
common=(--config "scripts/configs/$ARCH.json" --cache-dir "$DATA/melcache" --steps "${STEPS:-4000}" --batch-size 32 --lr 1e-4
        --seed "$SEED" --balance-folders --snapshot-every 1000 --threads "${THREADS:-1}")
[ -n "${STOP_AFTER:-}" ] && common+=(--stop-after "$STOP_AFTER")
# The log-mel cache once (the first run), before the two arms share it.
nice -n 15 audioembed pretrain "$DATA/corpus/audio" -o "$RUNS/unused" --cache-only --cache-dir "$DATA/melcache"
declare -A ARMS_CMD=([neg]="" [none]="--negatives none")
for arm in ${ARMS:-neg none}; do
  [ -n "${ARMS_CMD[$arm]+x}" ] || { echo "ARMS: unknown arm '$arm' (neg, none)" >&2; exit 2; }
  name="$ARCH-s$SEED-$arm"
  [ -f "$RUNS/$name/config.json" ] && continue
  if pgrep -f -- "audioembed pretrain .*-o $RUNS/$name " > /dev/null; then  # two runs on one checkpoint would clash
    echo "$name: already training (another process); left to it" >&2; continue
  fi
  resume=(); [ -f "$RUNS/$name.checkpoints/last.pt" ] && resume=(--resume)
  # shellcheck disable=SC2086
  nice -n 15 audioembed pretrain "$DATA/corpus/audio" -o "$RUNS/$name" ${ARMS_CMD[$arm]} "${common[@]}" "${resume[@]}" 2>>"$RUNS/$name.log" &
done
wait
