"""Does a change to the trainer leave its numbers alone? Losses of N steps, current code against a reference.

Speed changes to the training step (batched negatives, copies without waiting, statistics read back later)
must not change what is trained. This runs the current Trainer and the one of a git commit (or of a folder
holding `audioembed/`, for a machine without the git history) from the same seed on a synthetic cache,
with deterministic kernels, and compares every step's loss, for the negatives arm and BYOL-A.

    python benchmarks/same_numbers.py --ref d689647
    CUBLAS_WORKSPACE_CONFIG=:4096:8 python benchmarks/same_numbers.py --ref gpu/ref2 --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train_speed import fake_cache, import_ref  # noqa: E402

from audioembed.train.loop import Trainer  # noqa: E402
from audioembed.train.settings import TrainSettings  # noqa: E402


def losses(trainer_cls, settings_cls, cache, device: str, steps: int, **kw) -> list[float]:
    t = trainer_cls(settings_cls(steps=steps, seed=7, **kw), cache, "same", device, log=lambda m: None)
    return [t.train_step()["loss"] for _ in range(steps)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", required=True, help="git commit, or a folder holding audioembed/")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        cache = fake_cache(Path(tmp), clips=256, frames=500)
        ref = import_ref(args.ref, Path(tmp))
        for neg in ("freq", "none"):
            kw = dict(batch_size=args.batch, negatives=neg, neg_candidates=4)
            now = losses(Trainer, TrainSettings, cache, args.device, args.steps, **kw)
            again = losses(Trainer, TrainSettings, cache, args.device, args.steps, **kw)
            old = losses(*ref, cache, args.device, args.steps, **kw)
            diff = max(abs(a - b) for a, b in zip(now, old))
            noise = max(abs(a - b) for a, b in zip(now, again))
            print(f"negatives={neg}: {args.steps} steps, last loss {now[-1]:.6f} now, {old[-1]:.6f} at {args.ref}; "
                  f"max |difference| {diff:.3g} (run to run: {noise:.3g}); identical: {now == old}")
            same &= now == old
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
