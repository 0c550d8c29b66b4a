"""OpenVINO bfloat16 (and float32) against ONNX Runtime float32, side by side in one run; bf16's accuracy on real audio.

python benchmarks/backends_bf16.py [FOLDER] [--model M] [--threads 2] [--batch-sizes 1 32] [--rounds 3] [--calls 5]
(--rounds 0: the accuracy figures on FOLDER only)

Speed: 10 s clips of noise, each contender called --calls times per round (its best call is the round's figure),
contenders interleaved in a new shuffled order each round; a ratio is taken within a round (both sides measured
minutes apart at most), and every round's ratio is printed, so the spread shows. Two ways in:
  model alone:  backend.run on a padded batch (batch B = one call over B clips);
  Embedder.embed on decoded audio: windows, batching and pooling included, as users call it.
Accuracy (with FOLDER): every audio file under it embedded by ONNX Runtime float32 and by OpenVINO bf16; the lowest
cosine between a file's two vectors, and how many of each file's 10 nearest neighbours (cosine, itself left out)
the two agree on. Prints a table and one JSON line. The issue's bars: >= 3x model alone, >= 2x through embed,
lowest cosine >= 0.9995, neighbours >= 98 % (benchmarks/run.py has the speed bars as TARGET rows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

CONTENDERS = {"onnx f32": ("onnx", "f32"), "openvino bf16": ("openvino", "bf16"), "openvino f32": ("openvino", "f32")}


def best_call(call, calls: int) -> float:
    """Seconds of the fastest of `calls` calls."""
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def speed(model, threads: int, batch_sizes: list[int], rounds: int, calls: int, seconds: float) -> dict:
    from audioembed import Embedder

    rng = np.random.default_rng(0)
    embedders = {(name, b): Embedder(model, backend=backend, precision=precision, batch_size=b, num_threads=threads)
                 for name, (backend, precision) in CONTENDERS.items() for b in batch_sizes}
    cfg = next(iter(embedders.values())).config
    sr, pad = cfg.sample_rate, cfg.n_fft // 2
    clips = {b: [0.1 * rng.standard_normal(int(seconds * sr), dtype=np.float32) for _ in range(b)] for b in batch_sizes}
    padded = {b: np.pad(np.stack(c), ((0, 0), (pad, pad)), mode="reflect") for b, c in clips.items()}
    n_frames = int(seconds * sr) // cfg.hop_length + 1
    slots = {}
    for (name, b), e in embedders.items():
        slots[("model alone", name, b)] = lambda e=e, b=b: e.backend.run(padded[b], np.full(b, n_frames, np.int64))
        slots[("Embedder.embed", name, b)] = lambda e=e, b=b: e.embed(clips[b], sr=sr)
    for call in slots.values():  # first calls: allocations, kernels specialised for each shape
        call()
    times: dict = {key: [] for key in slots}
    keys = list(slots)
    for r in range(rounds):
        for i in np.random.default_rng([7, r]).permutation(len(keys)):
            times[keys[i]].append(best_call(slots[keys[i]], calls))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
    out = []
    for way in ("model alone", "Embedder.embed"):
        for b in batch_sizes:
            base = times[(way, "onnx f32", b)]
            rate = {name: [b * seconds / t for t in times[(way, name, b)]] for name in CONTENDERS}
            out.append({"way": way, "batch": b, "x_real_time": rate,
                        **{f"{name} / onnx f32": [t0 / t for t0, t in zip(base, times[(way, name, b)])]
                           for name in CONTENDERS if name != "onnx f32"}})
    return {"threads": threads, "clip_seconds": seconds, "rounds": rounds, "calls_per_round": calls, "rows": out}


def accuracy(model, folder: Path, threads: int, k: int = 10) -> dict:
    from audioembed import Embedder
    from audioembed.audio import AUDIO_EXTENSIONS

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    vectors, failed = {}, set()
    for name, (backend, precision) in CONTENDERS.items():
        e = Embedder(model, backend=backend, precision=precision, num_threads=threads)
        rows = np.zeros((len(files), e.dim), np.float32)
        for result in e.iter_results(files):
            if result.error is None:
                rows[result.index] = result.embedding
            else:
                failed.add(result.index)
        vectors[name] = rows
    keep = [i for i in range(len(files)) if i not in failed]
    unit = {n: v[keep] / np.linalg.norm(v[keep], axis=1, keepdims=True) for n, v in vectors.items()}
    out = {"files": len(keep), "failed": len(failed), "k": k}
    ref = unit["onnx f32"]
    for name in ("openvino bf16", "openvino f32"):
        cosine = (unit[name] * ref).sum(1)
        out[f"{name}: lowest cosine vs onnx f32"] = float(cosine.min())
        out[f"{name}: median cosine vs onnx f32"] = float(np.median(cosine))
        out[f"{name}: files below cosine 0.9995"] = int((cosine < 0.9995).sum())
        kk = min(k, len(keep) - 1)
        if kk > 0:
            out[f"{name}: top-{k} agreement vs onnx f32"] = float(np.mean([
                len(set(a) & set(b)) / kk for a, b in zip(neighbours(ref, kk), neighbours(unit[name], kk))]))
    return out


def neighbours(unit: np.ndarray, k: int) -> np.ndarray:
    scores = unit @ unit.T
    np.fill_diagonal(scores, -np.inf)
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, help="audio for the accuracy figures (none: speed only)")
    ap.add_argument("--model", help="model folder or hub id (default: the bundled default model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=5, help="calls per contender per round; the fastest counts")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length for the speed figures")
    args = ap.parse_args()
    from audioembed import backends
    from audioembed.backends import openvino

    if not (backends.openvino_available() and openvino.bf16_native()):
        sys.exit("needs openvino (pip install \".[openvino]\") and a CPU with native bfloat16 (AVX-512 BF16 or AMX)")
    import onnxruntime
    import openvino as ov

    res = {"cpu_bf16": True, "cores": os.cpu_count(), "onnxruntime": onnxruntime.__version__, "openvino": ov.__version__}
    print(f"openvino {ov.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads")
    if args.rounds > 0:  # --rounds 0: the accuracy figures only
        res["speed"] = speed(args.model, args.threads, args.batch_sizes, args.rounds, args.calls, args.seconds)
        print(f"{args.seconds:g} s clips, {args.rounds} rounds, best of {args.calls} calls a round")
        print("| way | batch | onnx f32 (x real time) | openvino bf16 / onnx f32 (each round) | openvino f32 / onnx f32 |")
        print("|---|---|---|---|---|")
    for row in res.get("speed", {}).get("rows", []):
        fmt = lambda values: ", ".join(f"{v:.2f}x" for v in values)  # noqa: E731
        print(f"| {row['way']} | {row['batch']} | {max(row['x_real_time']['onnx f32']):.0f} | "
              f"{fmt(row['openvino bf16 / onnx f32'])} | {fmt(row['openvino f32 / onnx f32'])} |")
    if args.folder is not None:
        res["accuracy"] = accuracy(args.model, args.folder, args.threads)
        print(f"\naccuracy on {args.folder}: " + ", ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}"
                                                        for k, v in res["accuracy"].items()))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
