#!/usr/bin/env bash
# The release recipe on one GPU for a wall-clock budget, its arms side by side on the same card:
#   neg32 / byola32:   scripts/train_default.sh's arms (batch 32, lr 1e-4), the negatives and their ablation;
#   neg256 / byola256: the same at BYOL-A's batch 256 and lr 3e-4;
#   cropneg32 / cropbyola32: batch 32, lr 1e-4 with BYOL-A's frequency crop [0.6, 1.5] and, for the
#                            negatives, `freq` at lambda 0.3 (docs/training.md, "Negatives that agree
#                            with the frequency crop"), against its ablation;
#   drop32 / dropbyola32: the release recipe (v0.3.0: `audioembed pretrain`'s defaults, batch 32, lr 1e-4) with the
#                         rate dropped to 3e-5 at 128,000 crops on a half cosine (docs/training.md, "500,000 crops
#                         with the learning rate dropped at 128,000"), against its ablation; run with STEPS=15625.
# An arm named ARM-sSEED trains with that seed (default 42): ARMS="cropneg32-s43 cropbyola32-s43".
# REF=FOLDER also times the trainer in FOLDER/audioembed side by side (benchmarks/train_speed.py --ref).
# STEPS caps each arm's steps (default: none, the minutes decide); KEEP lists the crop counts whose nearest
# snapshots go into the tars (default "64e3 256e3 1e6 4e6"; the last step always goes).
# Every arm snapshots as it goes; at the end each arm's chosen snapshots (about 64k, 256k, 1M, 4M crops
# and its last step) go into $OUT/ARM.tar, with the log, and its model folder ARM/ when it reached STEPS.
# First, benchmarks/train_speed.py measures
# samples/s of one process alone on the GPU (batch 32 and 256) into $OUT/speed.tar.
#
# ARMS picks some (default: all of them, seed 42). Sharing one card slows each process a lot (docs/training.md,
# "On a GPU"): the measured run was ARMS="neg256 byola256" MINUTES=7.
# Data: a log-mel cache folder, or a file scripts/data/pack_melcache.py packed (a GPU machine that
# reaches nothing gets its data beside the code):
#   PACK=gpu/mel.pack MINUTES=6 OUT=/tmp/out bash scripts/train_gpu.sh
# DEVICE=cpu MINUTES=0.3 tries it on a machine without a GPU (tests/test_train.py does).
set -uo pipefail
cd "$(dirname "$0")/.."
PACK=${PACK:-gpu/mel.pack}
MINUTES=${MINUTES:-6}
OUT=${OUT:-/tmp/train_gpu_out}
WORK=${WORK:-/tmp/train_gpu}
THREADS=${THREADS:-3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu MINUTES=0.3 tries the script out on a machine without a GPU
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
ae() { python3 -c 'from audioembed.cli import app; app()' "$@"; }

# PACK: a cache folder, or one or more packs (space-separated; e.g. the --parts of one cache sent in several calls)
# shellcheck disable=SC2086
if [ -d "$PACK" ]; then cache=$PACK; else cache=$WORK/cache; [ -f "$cache/meta.json" ] || python3 scripts/data/pack_melcache.py unpack $PACK "$cache"; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no GPU"; python3 -c 'import torch; print("torch", torch.__version__)'; } | tee "$WORK/gpu.txt"

if [ -z "${SKIP_SPEED:-}" ]; then
  for b in 32 256; do
    timeout 120 python3 benchmarks/train_speed.py --device "$DEVICE" --threads "$THREADS" --steps 40 --rounds 3 --warmup 10 \
      --set batch_size=$b ${REF:+--ref "$REF"} --json "$WORK/speed$b.json" 2>&1 | tee -a "$WORK/speed.log"
  done
  tar -cf "$OUT/speed.tar" -C "$WORK" gpu.txt speed.log $(cd "$WORK" && ls speed*.json 2>/dev/null)
fi

common='"log_every": 200, "ckpt_every": 4000, "balance_folders": true'  # the seed comes from the arm's name
# An arm's recipe: its flags (ARGS) and its config file's keys beyond the shared ones (KEYS).
declare -A ARGS=(
  [neg32]="--batch-size 32 --lr 1e-4 --negatives freq --snapshot-every 1000"
  [byola32]="--batch-size 32 --lr 1e-4 --negatives none --snapshot-every 1000"
  [neg256]="--batch-size 256 --lr 3e-4 --negatives freq --snapshot-every 250"
  [byola256]="--batch-size 256 --lr 3e-4 --negatives none --snapshot-every 250"
  [cropneg32]="--batch-size 32 --lr 1e-4 --negatives freq --snapshot-every 1000"
  [drop32]="--batch-size 32 --lr 1e-4 --snapshot-every 1000"
  [dropbyola32]="--batch-size 32 --lr 1e-4 --negatives none --snapshot-every 1000"
  [cropbyola32]="--batch-size 32 --lr 1e-4 --negatives none --snapshot-every 1000"
)
declare -A KEYS=(
  [neg32]='"neg_candidates": 4'
  [neg256]='"neg_candidates": 4'
  [cropneg32]='"rrc_freq_scale": [0.6, 1.5], "neg_lambda": 0.3, "neg_candidates": 4'
  [drop32]='"lr_after": 3e-5, "lr_decay_from": 0.256'
  [dropbyola32]='"lr_after": 3e-5, "lr_decay_from": 0.256'
  [cropbyola32]='"rrc_freq_scale": [0.6, 1.5]'
)
# An arm's flags: its recipe's and the seed its name carries.
flags() {
  local base=${1%-s[0-9]*} seed=42
  [[ $1 =~ -s([0-9]+)$ ]] && seed=${BASH_REMATCH[1]}
  [ -n "${ARGS[$base]:-}" ] || { echo "unknown arm $1 (known: ${!ARGS[*]})" >&2; return 1; }
  echo "${ARGS[$base]} --seed $seed"
}
# An arm's config file: the shared keys, its recipe's, and any given as $2.
config() { local base=${1%-s[0-9]*}; echo "{$common${KEYS[$base]:+, ${KEYS[$base]}}${2:+, $2}}"; }
for arm in ${ARMS:-${!ARGS[@]}}; do flags "$arm" > /dev/null || exit 2; config "$arm" > "$WORK/$arm.json"; done
for arm in ${ARMS:-${!ARGS[@]}}; do
  # shellcheck disable=SC2046
  ae pretrain "$cache" -o "$WORK/$arm" --device "$DEVICE" --config "$WORK/$arm.json" $(flags "$arm") --steps "${STEPS:-1000000}" \
     --stop-after "$MINUTES" --threads "$THREADS" > "$WORK/$arm.log" 2>&1 &
done
wait
for arm in ${ARMS:-${!ARGS[@]}}; do
  # The last step: a resume (of the arm's checkpoint) whose target is the step reached exports at once.
  last=$(grep -o 'stopped at step [0-9]*' "$WORK/$arm.log" | tail -1 | grep -o '[0-9]*$')
  [ -n "$last" ] || continue
  config "$arm" "\"checkpoint\": \"$WORK/$arm.checkpoints/last.pt\"" > "$WORK/$arm.last.json"
  # shellcheck disable=SC2046
  ae pretrain "$cache" -o "$WORK/$arm.snapshots/step-$(printf %06d "$last")" --device "$DEVICE" \
     --config "$WORK/$arm.last.json" $(flags "$arm") --steps "$last" --resume \
     --threads "$THREADS" >> "$WORK/$arm.log" 2>&1 &
done
wait
for arm in ${ARMS:-${!ARGS[@]}}; do
  batch=$(flags "$arm" | grep -o 'batch-size [0-9]*' | grep -o '[0-9]*$')
  keep=$(cd "$WORK/$arm.snapshots" 2>/dev/null && KEEP=${KEEP:-64e3 256e3 1e6 4e6} python3 - "$batch" <<'EOF'
import os, sys
batch = int(sys.argv[1])
steps = sorted(int(d.split("-")[1]) for d in os.listdir(".") if d.startswith("step-") and os.path.exists(f"{d}/config.json"))
want = {min(steps, key=lambda s: abs(s * batch - c)) for c in map(float, os.environ["KEEP"].split())} | set(steps[-1:])
print(" ".join(f"step-{s:06d}/{f}" for s in sorted(want) for f in ("config.json", "model.safetensors", "training.json") if os.path.exists(f"step-{s:06d}/{f}")))
EOF
)
  # An arm that reached STEPS inside its minutes wrote its model folder: that is its end, and it goes too.
  final=(); [ -f "$WORK/$arm/config.json" ] && final=("$arm/config.json" "$arm/model.safetensors"); [ -f "$WORK/$arm/training.json" ] && final+=("$arm/training.json")
  tar -cf "$OUT/$arm.tar" -C "$WORK" "$arm.log" $(for f in $keep; do echo "$arm.snapshots/$f"; done) "${final[@]}"
done
ls -la "$OUT"
