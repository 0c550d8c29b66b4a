#!/usr/bin/env python3
"""Nearest-neighbour retrieval on labelled dev sets by raw cosine, as `audioembed search` ranks: for each clip, is a
clip of its label among its 5 nearest others (hit@5), and what share of those 5 has it (precision@5)?

A linear probe standardises its features; cosine does not. For a stacked readout (conv map beside the MLP
output) this also scores the halves alone and each half scaled to unit norm before stacking, to see whether one
half drowns the other. Vectors come from `audioembed evaluate`'s cache (the same --cache), computed if missing.

Example:  python3 scripts/retrieval.py DATA/devsets/{gm_family,gm_pitch,ktuberling_lang,zeroad_sfx} \
              -m models/audioembed-base -m STACKED_FOLDER --random-init --json retrieval.json
"""
import argparse
import json
from pathlib import Path

import numpy as np

from audioembed import Embedder
from audioembed.eval import baselines, features
from audioembed.eval.dataset import load_dataset

K = 5


def scores(x: np.ndarray, labels: np.ndarray) -> dict:
    """hit@K and precision@K of cosine neighbours (self excluded; ties broken by row order)."""
    x = x.astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    top = np.argsort(-sim, axis=1, kind="stable")[:, :K]
    same = labels[top] == labels[:, None]
    return {"hit": float(same.any(axis=1).mean()), "precision": float(same.mean())}


def variants(x: np.ndarray, cfg) -> dict:
    """The vector as searched, and for a stacked readout its halves and a version with each half at unit norm."""
    out = {"as is": x}
    if cfg.readout == "stacked":
        conv, mlp = x[:, : cfg.conv_dim], x[:, cfg.conv_dim :]
        unit = lambda a: a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)  # noqa: E731
        out.update({"conv half": conv, "mlp half": mlp, "halves at unit norm": np.hstack([unit(conv), unit(mlp)])})
        out["norm ratio conv/mlp"] = float(np.median(np.linalg.norm(conv, axis=1) / np.maximum(np.linalg.norm(mlp, axis=1), 1e-12)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+", type=Path)
    ap.add_argument("-m", "--model", action="append", default=[], help="model folder (repeatable)")
    ap.add_argument("--random-init", action="store_true", help="also each model's architecture with random weights")
    ap.add_argument("--cache", type=Path, default=None, help="evaluate's embedding cache (default: its default)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    cache = (args.cache or features.default_cache()).expanduser()
    rows = []
    for name in args.model:
        e = Embedder(name, backend="onnx")
        rows.append((name, e))
        if args.random_init:
            rows.append((f"random-init ({name})", Embedder(baselines.random_init_folder(e.config, cache), backend="onnx")))
    sets = [load_dataset(p) for p in args.datasets]
    result = {"k": K, "rows": {}}
    for name, e in rows:
        ex = features.ModelExtractor(name, e)
        per = {}
        for ds in sets:
            f = features.compute(ex, ds.paths, cache)
            labels = np.array(ds.labels)[f.ok]
            for variant, x in variants(f.matrix, e.config).items():
                per.setdefault(variant, {})[ds.name] = x if isinstance(x, float) else scores(x, labels)
        result["rows"][name] = per
        for variant, by_set in per.items():
            cells = " | ".join(f"{v:.3f}" if isinstance(v, float) else f"{v['hit']:.3f} / {v['precision']:.3f}"
                               for v in by_set.values())
            print(f"| {name} | {variant} | {cells} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
