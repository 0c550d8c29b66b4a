#!/usr/bin/env bash
# A long pair with snapshots: a negatives arm against the BYOL-A ablation, each snapshotted every
# 1,000 steps (32,000 crops) so the dev sets can follow the run. Same corpus, cache, seed (42), batch
# (32) and budget (15,625 steps = 500,000 crops) as scripts/train_default.sh.
#   NEG_NAME, NEG_JSON: the negatives arm's name and settings (default: pitchrep, pitch-shift
#   negatives in the representation); LR: learning rate of both arms (default 3e-4).
#   The second pair (docs/training.md): RUNS=$DATA/runs2 with the defaults. The third:
#   RUNS=$DATA/runs3 LR=1e-4 NEG_NAME=neg NEG_JSON='{"negatives": "freq", "neg_candidates": 4}'.
# Resumable: rerun it (each arm continues from its checkpoint; a finished arm is skipped).
# EVAL=1 evaluates every snapshot not yet evaluated (one seed of folds) into $RUNS/evals/ARM-step-N.json.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?set DATA to the folder for corpus/, devsets/, melcache/ and runs}"
RUNS=${RUNS:-$DATA/runs2}
mkdir -p "$RUNS"
NEG_NAME=${NEG_NAME:-pitchrep}
NEG_JSON=${NEG_JSON:-'{"negatives": ["pitch_shift"], "neg_candidates": 4, "neg_semitones": [1, 6], "neg_space": "representation", "neg_margin": 0.8}'}
# Each arm's config file: the negatives arm's NEG_JSON, both with the schedule's lr_decay_from (DECAY).
python3 -c 'import json, sys; print(json.dumps({**json.loads(sys.argv[1]), "lr_decay_from": float(sys.argv[2])}))' \
  "$NEG_JSON" "${DECAY:-1}" > "$RUNS/$NEG_NAME.json"
echo "{\"lr_decay_from\": $(python3 -c 'import sys; print(float(sys.argv[1]))' "${DECAY:-1}")}" > "$RUNS/byola.json"
if [ -n "${EVAL:-}" ]; then
  mkdir -p "$RUNS/evals"
  for s in "$RUNS"/*.snapshots/step-*; do
    [ -f "$s/config.json" ] || continue
    out="$RUNS/evals/$(basename "$(dirname "$s")" .snapshots)-$(basename "$s").json"
    [ -f "$out" ] && continue
    OPENBLAS_NUM_THREADS=1 nice -n 10 audioembed evaluate "$DATA"/devsets/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
      -m "$s" --baselines none --seeds 1 --cache "$RUNS/evalcache" --json "$out" > /dev/null
  done
  exit 0
fi
common=(--cache-dir "$DATA/melcache" --steps 15625 --batch-size 32 --lr "${LR:-3e-4}"
        --seed 42 --balance-folders
        --snapshot-every 1000 --threads "${THREADS:-1}")
declare -A ARMS=(["$NEG_NAME"]="--config $RUNS/$NEG_NAME.json" [byola]="--config $RUNS/byola.json --negatives none")
for name in "${!ARMS[@]}"; do
  [ -f "$RUNS/$name/config.json" ] && continue
  resume=(); [ -f "$RUNS/$name.checkpoints/last.pt" ] && resume=(--resume)
  # shellcheck disable=SC2086
  nice -n 5 audioembed pretrain "$DATA/corpus/audio" -o "$RUNS/$name" ${ARMS[$name]} "${common[@]}" "${resume[@]}" 2>>"$RUNS/$name.log" &
done
wait
