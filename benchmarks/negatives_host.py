"""Host-side cost of drawing the adversarial negatives (`negatives.candidates`), the part of a
training step that runs in Python on the CPU whatever the device: on a GPU it is what the
accelerator waits for (docs/training.md, "On a GPU").

Times candidates() on a CPU batch of log-mel crops and counts the Python function calls it makes.
`--against REV` also loads `audioembed/train/negatives.py` as it was at a git revision and runs
both side by side, alternating, on the same inputs: it checks the outputs are identical (the random
stream is part of a run's recipe) and prints the time ratio.

    python benchmarks/negatives_host.py --against 3e3bfd5
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from audioembed.train import negatives
from audioembed.train.settings import FREQ_STRATEGIES, STRATEGIES
from train_speed import package_at  # benchmarks/ is on the path when run as a script


def module_at(rev: str):
    """negatives.py of the package as it was at REV (train_speed's extraction of a git revision)."""
    return importlib.import_module(package_at(rev, Path(tempfile.mkdtemp())) + ".train.negatives")


def draw(mod, x, strategies, k, seed):
    return mod.candidates(x, strategies, 4, torch.Generator().manual_seed(seed), k)


def calls(mod, x, strategies, k) -> int:
    prof = cProfile.Profile()
    prof.runcall(draw, mod, x, strategies, k, 0)
    return pstats.Stats(prof).total_calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=96,
                    help="crop length; a few frames leave little but the per-item index work, as on a GPU")
    ap.add_argument("--against", help="git revision whose negatives.py to compare with")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mods = {"this tree": negatives}
    if args.against:
        mods[args.against] = module_at(args.against)
    x = torch.randn(args.batch, 64, args.frames, generator=torch.Generator().manual_seed(0))
    print(f"candidates(): batch {args.batch} of 64 x {args.frames}, k = {args.candidates}, {args.threads} thread(s), "
          f"median of {args.repeats}")
    for label, strategies in (("freq (4 strategies)", FREQ_STRATEGIES), ("all 7 strategies", STRATEGIES)):
        times = {name: [] for name in mods}
        for r in range(args.repeats + 1):  # the first round warms up
            for name, mod in mods.items():
                t = time.perf_counter()
                draw(mod, x, strategies, args.candidates, r)
                if r:
                    times[name].append(time.perf_counter() - t)
        if args.against:
            same = all(torch.equal(draw(negatives, x, strategies, args.candidates, s),
                                   draw(mods[args.against], x, strategies, args.candidates, s)) for s in range(3))
            if not same:
                sys.exit(f"{label}: outputs differ from {args.against}'s: the random stream changed")
        for name, mod in mods.items():
            ms = 1000 * statistics.median(times[name])
            print(f"  {label:20s} {name:>10s}: {ms:7.1f} ms, {calls(mod, x, strategies, args.candidates):6d} Python calls")
        if args.against:
            ratio = statistics.median(times[args.against]) / statistics.median(times["this tree"])
            print(f"  {label:20s} {args.against} / this tree: {ratio:.2f}x time, outputs identical")


if __name__ == "__main__":
    main()
