"""Inference time of the encoder's block order: BYOL-A's (conv, BN, ReLU, max-pool) against ours (conv, BN,
max-pool, ReLU), which gives the same numbers with the ReLU on a map 4x smaller.

python benchmarks/layer_order.py [--model models/audioembed-base] [--threads 2] [--batch 8] [--seconds 10] [--rounds 7]

Both orders get the same weights (the model folder's), are exported to ONNX as `audioembed pretrain` exports,
and run alternately, round by round, in ONNX Runtime and in torch (eval mode, float32), so a busy machine
slows both alike. Prints the largest difference of their outputs, per-round times and the median ratio; one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from audioembed.nn.weights import load_weights
from audioembed.config import ModelConfig
from audioembed.nn import AudioEncoder
from audioembed.nn.export import export_onnx


def published_order(model: AudioEncoder) -> AudioEncoder:
    """A copy of `model` with each block's ReLU moved back before its max-pool (same modules, same weights)."""
    other = AudioEncoder(model.cfg).eval()
    other.load_state_dict(model.state_dict())
    layers: list[nn.Module] = []
    for i in range(0, len(other.features), 4):
        conv, bn, pool, relu = other.features[i : i + 4]
        layers += [conv, bn, nn.ReLU(), pool]
    other.features = nn.Sequential(*layers)
    return other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/audioembed-base")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.model)
    cfg = ModelConfig.load(folder / "config.json")
    ours = AudioEncoder(cfg).eval()
    load_weights(ours, folder / "model.safetensors")
    theirs = published_order(ours)
    n = int(args.seconds * cfg.sample_rate)
    wave = np.random.default_rng(0).standard_normal((args.batch, n + cfg.n_fft)).astype(np.float32) * 0.1
    n_frames = np.full(args.batch, n // cfg.hop_length + 1, dtype=np.int64)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    runners = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in (("published", theirs), ("ours", ours)):
            export_onnx(model, Path(tmp) / f"{name}.onnx")
            session = ort.InferenceSession(str(Path(tmp) / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
            runners[f"onnx {name}"] = lambda s=session: s.run(None, {"wave": wave, "n_frames": n_frames})[0]
            runners[f"torch {name}"] = lambda m=model: m(torch.from_numpy(wave), torch.from_numpy(n_frames)).numpy()
        with torch.no_grad():
            outputs = {k: run() for k, run in runners.items()}  # also the warm-up
            times: dict[str, list[float]] = {k: [] for k in runners}
            for _ in range(args.rounds):
                for k, run in runners.items():
                    t = time.perf_counter()
                    run()
                    times[k].append(time.perf_counter() - t)
    result = {"threads": args.threads, "batch": args.batch, "seconds": args.seconds, "rounds": args.rounds}
    for backend in ("onnx", "torch"):
        a, b = times[f"{backend} published"], times[f"{backend} ours"]
        ratios = [x / y for x, y in zip(a, b)]
        diff = float(np.abs(outputs[f"{backend} published"] - outputs[f"{backend} ours"]).max())
        result[backend] = {"published_ms": round(statistics.median(a) * 1000, 1), "ours_ms": round(statistics.median(b) * 1000, 1),
                           "speedup_median": round(statistics.median(ratios), 3), "speedup_rounds": [round(r, 2) for r in ratios],
                           "max_abs_diff": diff}
        print(f"{backend:5s}  published {result[backend]['published_ms']:7.1f} ms  ours {result[backend]['ours_ms']:7.1f} ms  "
              f"published / ours per round {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}x)  "
              f"largest output difference {diff:.3g}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
