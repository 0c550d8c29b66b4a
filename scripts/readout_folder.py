#!/usr/bin/env python3
"""Write a model folder's weights again with another readout, or with its stacked halves balanced.

The stacked readout puts the last conv block's map beside the MLP output (BYOL-A v2's AudioNTT2022): the
weights are the same, the config's readout and dim change, and model.onnx is exported again so that both
backends return the stacked frames. For evaluating a trained encoder with another readout
(docs/experiments/readout.md).

The conv half's values are several times the MLP half's, so in raw cosine (search, clustering) it drowns the
other; a linear probe standardises its features and cannot tell. --stack-scale-from AUDIO_DIR measures both
halves' norms on clips of unlabelled audio (the training corpus, never an evaluation set) and sets config.json's
stack_scale to the median MLP/conv norm ratio, so that the halves weigh alike in cosine. Each half's values keep
their sign and order, so a probe's accuracy is the same.

Examples:  python3 scripts/readout_folder.py models/audioembed-base -o /tmp/base-stacked --readout stacked
           python3 scripts/readout_folder.py RUN -o OUT --stack-scale-from DATA/corpus/audio --clips 500
"""
import argparse
import dataclasses
import shutil
from pathlib import Path

import numpy as np

from audioembed.config import ModelConfig
from audioembed.files import find_audio
from audioembed.nn import AudioEncoder
from audioembed.nn.export import save_model_folder
from audioembed.nn.weights import load_weights


def norm_ratio(folder: Path, audio_dir: Path, clips: int) -> float:
    """The median over `clips` files (spread evenly over the sorted folder) of |MLP half| / |conv half| of a clip's
    vector, at stack_scale 1."""
    from audioembed import Embedder

    files = find_audio(audio_dir)  # what every command walks: sorted, hidden folders and symlinked ones skipped
    if not files:
        raise SystemExit(f"{audio_dir}: no audio files")
    picked = [files[i] for i in np.linspace(0, len(files) - 1, min(clips, len(files))).round().astype(int)]
    e = Embedder(folder, backend="onnx")
    if e.config.readout != "stacked" or e.config.stack_scale != 1.0:
        raise SystemExit(f"{folder}: --stack-scale-from needs a stacked readout at stack_scale 1")
    v = e.embed([str(p) for p in picked]).astype(np.float64)
    conv, mlp = np.linalg.norm(v[:, : e.config.conv_dim], axis=1), np.linalg.norm(v[:, e.config.conv_dim :], axis=1)
    ok = conv > 0
    return float(np.median(mlp[ok] / conv[ok]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a model folder (config.json, model.safetensors)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the folder to write")
    ap.add_argument("--readout", choices=["mlp", "stacked"], help="default: the folder's own")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--stack-scale", type=float, help="the stacked conv half's factor (config.json's stack_scale)")
    how.add_argument("--stack-scale-from", type=Path, metavar="AUDIO_DIR",
                     help="set stack_scale so the halves' norms match on this unlabelled audio (median over --clips files)")
    ap.add_argument("--clips", type=int, default=500)
    args = ap.parse_args()
    cfg = ModelConfig.load(args.model / "config.json")
    readout = args.readout or cfg.readout
    scale = args.stack_scale if args.stack_scale is not None else 1.0
    if args.stack_scale_from:
        scale = round(norm_ratio(args.model, args.stack_scale_from, args.clips), 4)
    dim = cfg.mlp_out + (cfg.conv_dim if readout == "stacked" else 0)
    name = cfg.name if readout == cfg.readout else f"{cfg.name}-{readout}"
    new = dataclasses.replace(cfg, name=name, readout=readout, dim=dim, mlp_hidden=cfg.hidden, sha256={},
                              stack_scale=scale if readout == "stacked" else 1.0)
    model = AudioEncoder(new)
    load_weights(model, args.model / "model.safetensors")
    what = f"read out as `{readout}` ({dim}-d" + (f", conv half x {scale}" if new.stack_scale != 1.0 else "")
    save_model_folder(model, args.out, card_text=f"# {new.name}\n\n{cfg.name}'s weights, {what}; no retraining).\n")
    if (args.model / "training.json").is_file():  # the record travels with the weights (ship_model.py reads it)
        shutil.copyfile(args.model / "training.json", args.out / "training.json")
    print(f"{args.out}: {readout} readout, dim {dim}, stack_scale {new.stack_scale}")


if __name__ == "__main__":
    main()
