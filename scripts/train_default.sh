#!/usr/bin/env bash
# Reproduce the shipped model (v0.4.0) and its BYOL-A ablation, then evaluate both.
# v0.4.0 is v0.3.0's recipe below with the stacked readout (scripts/configs/audiontt2020-stacked.json: AudioNTT2020,
# each frame the last conv map's 512 values beside the MLP's 512) and training seed 43 (of the three its arm was
# decided on: docs/experiments/readout.md), then its halves balanced for cosine (scripts/readout_folder.py
# --stack-scale-from, the last step here). v0.3.0 (MLP readout, 512-d, seed 42) is this script at commit 552dc0d.
# Same corpus, seed, batch, steps, views and dropout draws for both runs; only the negative term
# differs. The release is 4,000 steps x 32 crops = 128,000 crops at lr 1e-4 with BYOL-A's frequency crop,
# and pitch-shift negatives (1-6 semitones, hardest of 4) pushed to cosine 0 in a head of their own
# (docs/training.md); since v0.3.0 that is `audioembed pretrain`'s default recipe. The 500,000-crop pair
# (not shipped: docs/training.md) is STEPS=15625 LR_DECAY_FROM=0.5; the one with the rate dropped at 128,000 crops
# (not shipped either) is STEPS=15625 LR_AFTER=3e-5 LR_DECAY_FROM=0.256. v0.2.0's recipe (no crop, `--negatives
# freq` in the projection, 2,000 steps) is this script at commit b8e4525.
# Arithmetic: `precision` `auto` (the default) is bfloat16 autocast where the CPU or GPU has it in hardware, as the
# release was trained (AVX-512 BF16), and float32 elsewhere (7x faster than emulated bfloat16 on an AVX2-only CPU).
# Resumable: rerun the same command after a stop (each run continues from its checkpoint; RUNS holds
# checkpoints, outside the repository).
# STOP_AFTER=MIN stops both runs after that many minutes of this invocation (checkpointed). A finished arm
# (its model folder written) is skipped, and the remaining one gets all the cores (threads do not change the recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?set DATA to the folder for corpus/, devsets/, melcache/ and runs}"
RUNS=${RUNS:-$DATA/runs-release}
STEPS=${STEPS:-4000}
python3 scripts/data/build_corpus.py --out "$DATA/corpus"      # pretraining audio (Debian packages)
python3 scripts/data/build_devsets.py --out "$DATA/devsets"    # labelled dev sets (not in the corpus)
mkdir -p "$RUNS"
# The schedule's settings beyond the flags: a config file (docs/training.md#settings).
echo "{\"readout\": \"stacked\", \"dim\": 1024, \"lr_decay_from\": ${LR_DECAY_FROM:-1.0}${LR_AFTER:+, \"lr_after\": $LR_AFTER}}" > "$RUNS/schedule.json"
common=(--cache-dir "$DATA/melcache" --steps "$STEPS" --batch-size 32 --lr "${LR:-1e-4}" --config "$RUNS/schedule.json" --seed "${SEED:-43}" --balance-folders)
[ -n "${STOP_AFTER:-}" ] && common+=(--stop-after "$STOP_AFTER")
declare -A ARMS=([audioembed-base]="" [audioembed-byola]="--negatives none")   # the default negatives; none
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
# The halves balanced for cosine search, as shipped (a linear probe scores both folders alike).
[ -f "$RUNS/audioembed-base-balanced/config.json" ] || python3 scripts/readout_folder.py "$RUNS/audioembed-base" \
    -o "$RUNS/audioembed-base-balanced" --stack-scale-from "$DATA/corpus/audio" --clips 500
OPENBLAS_NUM_THREADS=1 audioembed evaluate "$DATA"/devsets/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
    -m "$RUNS/audioembed-base-balanced" -m "$RUNS/audioembed-byola" --baselines logmel-stats,random-init --json "$RUNS/evaluation.json"
