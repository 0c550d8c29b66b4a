#!/usr/bin/env python3
"""Write a model folder that reads an existing model's weights out another way (no retraining).

The stacked readout puts the last conv block's map beside the MLP output (BYOL-A v2's AudioNTT2022): the
weights are the same, the config's readout and dim change, and model.onnx is exported again so that both
backends return the stacked frames. For evaluating a trained encoder with another readout
(docs/experiments/readout.md).

Example:  python3 scripts/readout_folder.py models/audioembed-base -o /tmp/base-stacked --readout stacked
"""
import argparse
import dataclasses
from pathlib import Path

from audioembed.nn.weights import load_weights
from audioembed.config import ModelConfig
from audioembed.nn import AudioEncoder
from audioembed.nn.export import save_model_folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a model folder (config.json, model.safetensors)")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the folder to write")
    ap.add_argument("--readout", choices=["mlp", "stacked"], required=True)
    args = ap.parse_args()
    cfg = ModelConfig.load(args.model / "config.json")
    mlp_out = cfg.mlp_out
    dim = mlp_out + (cfg.conv_dim if args.readout == "stacked" else 0)
    new = dataclasses.replace(cfg, name=f"{cfg.name}-{args.readout}", readout=args.readout, dim=dim,
                              mlp_hidden=cfg.hidden, sha256={})
    model = AudioEncoder(new)
    load_weights(model, args.model / "model.safetensors")
    card = f"# {new.name}\n\n{cfg.name}'s weights, read out as `{args.readout}` ({dim}-d; no retraining).\n"
    save_model_folder(model, args.out, card_text=card)
    print(f"{args.out}: {args.readout} readout, dim {dim}")


if __name__ == "__main__":
    main()
