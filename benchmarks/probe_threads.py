"""`audioembed evaluate`'s numpy/scikit-learn work with the BLAS/OpenMP threads it runs with (1) against
the libraries' default: the linear probe, and the logmel-stats baseline.

python benchmarks/probe_threads.py [--clips 1534 --dim 512 --classes 16 --splits 2 --rounds 2 --logmel-clips 20]

Probe: synthetic features the size of gm_family's (clusters per class plus noise). logmel-stats: generated
10 s clips with the default model config. The settings run interleaved, round by round, so that machine
load falls on both. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def features(clips: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(clips) % classes
    centres = rng.standard_normal((classes, dim)).astype(np.float32)
    X = centres[y] + 12.0 * rng.standard_normal((clips, dim)).astype(np.float32)
    return X, np.array([f"c{k}" for k in y])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=1534)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=16)
    ap.add_argument("--splits", type=int, default=2, help="probe runs (each: 5 fits for C, one refit) per setting and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--logmel-clips", type=int, default=20, help="10 s clips for the logmel-stats timing")
    args = ap.parse_args()

    from threadpoolctl import threadpool_info, threadpool_limits

    from audioembed.config import ModelConfig
    from audioembed.eval import baselines, probe

    X, y = features(args.clips, args.dim, args.classes)
    splits = probe.plan(list(y), folds=5, seeds=1)[: args.splits]
    default_threads = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    times: dict[str, list[float]] = {"package (1 thread)": [], "library default": []}
    accuracy: dict[str, list[float]] = {k: [] for k in times}
    logmel_times: dict[str, list[float]] = {k: [] for k in times}
    waves = [np.random.default_rng(i).standard_normal(160000).astype(np.float32) * 0.1 for i in range(args.logmel_clips)]
    stats = baselines.LogMelStats(ModelConfig())
    for _ in range(args.rounds):
        for setting, limit in (("package (1 thread)", 1), ("library default", None)):
            started = time.perf_counter()
            with threadpool_limits(limits=limit):
                for wave in waves:
                    stats(wave)
            logmel_times[setting].append((time.perf_counter() - started) / len(waves))
        for setting in times:
            started = time.perf_counter()
            if setting == "library default":  # what the probe did before it limited its thread pools
                with threadpool_limits(limits=None):
                    runs = [probe._score(X, y, s, probe.C_GRID) for s in splits]
            else:
                runs = [probe.score(X, y, s) for s in splits]
            times[setting].append((time.perf_counter() - started) / len(splits))
            accuracy[setting].append(float(np.mean([r.accuracy for r in runs])))
    print(f"{args.clips} clips x {args.dim} dims, {args.classes} classes, {os.cpu_count()} cores; threads by default: {default_threads}")
    print("| setting | s per probe run | probe accuracy | logmel-stats s per 10 s clip |\n|---|---|---|---|")
    for setting, t in times.items():
        print(f"| {setting} | {np.median(t):.2f} | {100 * np.mean(accuracy[setting]):.1f} | {np.median(logmel_times[setting]):.3f} |")
    print("(medians over rounds)")
    print(json.dumps({"args": vars(args), "cores": os.cpu_count(), "default_threads": default_threads, "seconds": times,
                      "accuracy": accuracy, "logmel_seconds_per_clip": logmel_times}))


if __name__ == "__main__":
    main()
