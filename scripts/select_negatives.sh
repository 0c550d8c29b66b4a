#!/usr/bin/env bash
# Short runs that choose the negatives' recipe: 3 arms x 3 seeds, same data and budget, then the
# linear probe on the four dev sets. Arms: the BYOL-A ablation, the first release's negatives
# (five strategies, one random draw), and hardest-of-4 frequency-axis negatives.
# Usage: CORPUS=... DEVSETS=... OUT=... STEPS=250 bash scripts/select_negatives.sh
set -euo pipefail
: "${DATA:?set DATA to the folder holding corpus/ and devsets/}"
CORPUS=${CORPUS:-$DATA/corpus/audio}
DEVSETS=${DEVSETS:-$DATA/devsets}
OUT=${OUT:-$DATA/sel}
STEPS=${STEPS:-250}
AE=${AE:-audioembed}
common=(--steps "$STEPS" --batch-size 32 --balance-folders --cache-dir "$OUT/melcache" --threads 1)
mkdir -p "$OUT"
echo '{"neg_candidates": 1}' > "$OUT/random-draw.json"   # settings beyond the flags: config files
echo '{"neg_candidates": 4}' > "$OUT/hardest-of-4.json"
declare -A ARMS=(
  [byola]="--negatives none"
  [neg-v1]="--negatives freq_roll,freq_shuffle,time_shuffle,freq_flip,time_flip --config $OUT/random-draw.json"
  [neg-hard]="--negatives freq --config $OUT/hardest-of-4.json"
)
# Build the log-mel cache once, then one process per arm (one thread each), seeds in turn.
"$AE" pretrain "$CORPUS" -o "$OUT/unused" --cache-only --cache-dir "$OUT/melcache"
for arm in "${!ARMS[@]}"; do
  (for seed in 1 2 3; do
     run="$OUT/$arm-s$seed"
     [ -f "$run/config.json" ] && continue
     resume=(); [ -f "$run.checkpoints/last.pt" ] && resume=(--resume)
     # shellcheck disable=SC2086
     "$AE" pretrain "$CORPUS" -o "$run" ${ARMS[$arm]} --seed "$seed" "${common[@]}" "${resume[@]}" 2>"$run.log"
   done) &
done
wait
models=(); for arm in byola neg-v1 neg-hard; do for seed in 1 2 3; do models+=(-m "$OUT/$arm-s$seed"); done; done
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$AE" evaluate "$DEVSETS"/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
  "${models[@]}" --seeds 1 --baselines logmel-stats,random-init --cache "$OUT/evalcache" --json "$OUT/evaluation.json"
python3 "$(dirname "$0")/summarize_seeds.py" "$OUT/evaluation.json" --runs "$OUT"
