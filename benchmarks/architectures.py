"""Inference cost of the encoders side by side: AudioNTT2020 (v0.3.0, MLP readout), the same read out stacked, and
BYOL-A v2's AudioNTT2022 (2 blocks, MLP 2,048, 2,048-d stacked), in ONNX Runtime on the CPU.

python benchmarks/architectures.py [--model models/audioembed-base] [--threads 2] [--seconds 10] [--rounds 5]

Each encoder is exported to ONNX as `audioembed pretrain` exports it (AudioNTT2022 with random weights: the cost
does not depend on their values) and run through the public Embedder on decoded audio, alternating round by round
so a busy machine slows all alike. Prints × real time at batch 1 and 32 (best round and median), parameters and
model.onnx size; one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from audioembed import Embedder
from audioembed.config import ModelConfig

ARCHS = {
    "audiontt2020 (mlp 512)": {},
    "audiontt2020 (stacked 1024)": dict(readout="stacked", dim=1024, mlp_hidden=512),
    "audiontt2022 (stacked 2048)": dict(n_blocks=2, mlp_hidden=2048, dim=2048, readout="stacked"),
}


def build(name: str, overrides: dict, base: ModelConfig, root: Path) -> Path:
    import dataclasses

    import torch

    from audioembed.nn import AudioEncoder
    from audioembed.nn.export import save_model_folder

    cfg = dataclasses.replace(base, name=name.split()[0], sha256={}, extra={}, **overrides)
    torch.manual_seed(0)
    out = root / name.replace(" ", "_").replace("(", "").replace(")", "")
    save_model_folder(AudioEncoder(cfg), out, card_text="# bench\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/audioembed-base"), help="the frontend and normalisation to use")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    base = ModelConfig.load(args.model / "config.json")
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(int(args.seconds * base.sample_rate))).astype(np.float32) for _ in range(32)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        embedders = {}
        for name, overrides in ARCHS.items():
            folder = build(name, overrides, base, Path(tmp))
            e = Embedder(folder, backend="onnx", num_threads=args.threads, batch_size=32)
            cfg = e.config
            embedders[name] = e
            results[name] = {"dim": cfg.dim, "parameters": cfg.n_parameters,
                             "onnx_mb": round((folder / "model.onnx").stat().st_size / 1e6, 2), "b1": [], "b32": []}
            e.embed(clips[:2], sr=base.sample_rate)  # warm-up
        for _ in range(args.rounds):
            for name, e in embedders.items():
                t = time.perf_counter()
                for clip in clips[:4]:
                    e.embed(clip, sr=base.sample_rate)
                results[name]["b1"].append(4 * args.seconds / (time.perf_counter() - t))
                t = time.perf_counter()
                e.embed(clips, sr=base.sample_rate)
                results[name]["b32"].append(32 * args.seconds / (time.perf_counter() - t))
    first = next(iter(results))
    print(f"| encoder | dim | parameters | model.onnx MB | batch 1 × real time (best / median) | batch 32 | batch-1 ratio to {first} |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        ratio = statistics.median(a / b for a, b in zip(r["b1"], results[first]["b1"]))
        print(f"| {name} | {r['dim']} | {r['parameters']:,} | {r['onnx_mb']} | {max(r['b1']):.0f} / {statistics.median(r['b1']):.0f} "
              f"| {max(r['b32']):.0f} / {statistics.median(r['b32']):.0f} | {ratio:.2f} |")
    print(json.dumps({"threads": args.threads, "seconds": args.seconds, "results": results}))


if __name__ == "__main__":
    main()
