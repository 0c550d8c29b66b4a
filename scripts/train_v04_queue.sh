#!/usr/bin/env bash
# Quality v0.4's grid (scripts/train_v04.sh), one arm per core: the arms in QUEUE order, SLOTS at a time; finished
# arms are skipped and checkpointed ones resume, so the same command continues the grid in the next session.
# Usage:  DATA=/path/to/data [SLOTS=2] [QUEUE="ARCH:SEED:ARM ..."] scripts/train_v04_queue.sh
# To stop: kill the queue first (pkill -TERM -f train_v04_queue), then the runs (pkill -TERM -f "audioembed pretrain"):
# each run writes its checkpoint and exits. An arm that ends without its model folder (stopped, or failed) also
# stops the queue from starting more.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${DATA:?set DATA to the folder holding corpus/ and melcache/}"
SLOTS=${SLOTS:-2}
RUNS=${RUNS:-$DATA/runs-v04}
TRAIN=${TRAIN:-scripts/train_v04.sh}
# The lead candidate (AudioNTT2022) first, both arms of each seed, then AudioNTT2020 stacked: a session that ends
# early leaves whole seeds of one architecture, which the release rule can use, not one seed of each.
grid=""
for arch in audiontt2022 audiontt2020-stacked; do
  for seed in 42 43 44; do grid+=" $arch:$seed:neg $arch:$seed:none"; done
done
QUEUE=${QUEUE:-${grid# }}
declare -A started=()
stopped() {  # an arm started here that is no longer running and left no model folder
  local name
  for name in "${!started[@]}"; do
    if ! kill -0 "${started[$name]}" 2>/dev/null && [ ! -f "$RUNS/$name/config.json" ]; then
      echo "queue: $name ended without its model folder (stopped or failed; see $RUNS/$name.log); starting no more" >&2
      return 0
    fi
  done
  return 1
}
running() {  # training processes writing under RUNS (all, or the arm named), whoever started them
  pgrep -f -- "audioembed pretrain .*-o $RUNS/${1:-}" | wc -l
}
for item in $QUEUE; do
  IFS=: read -r arch seed arm <<< "$item"
  name="$arch-s$seed-$arm"
  [ -f "$RUNS/$name/config.json" ] || [ -n "${started[$name]+x}" ] && continue
  [ "$(running "$name ")" -gt 0 ] && continue  # running already (started by hand or by another queue)
  while [ "$(running)" -ge "$SLOTS" ]; do sleep "${POLL:-30}"; done
  stopped && break
  echo "queue: $(date -u +%FT%TZ) $name" >&2
  ARCH=$arch SEED=$seed ARMS=$arm bash "$TRAIN" &
  started[$name]=$!
  sleep "${SETTLE:-60}"  # until its training process shows in `running`
done
wait
