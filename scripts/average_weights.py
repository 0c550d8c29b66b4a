"""Average model folders' weights (same architecture, e.g. one run's snapshots) into a new model folder.

    python scripts/average_weights.py OUT RUN.snapshots/step-008000 ... RUN

Every float tensor (batch-norm statistics included) is the uniform mean of the folders'; integer buffers and
config.json (with its training record) come from the last folder. Tried on the 500,000-crop runs and not
adopted (docs/training.md, "Averaged snapshots").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from audioembed.config import ModelConfig
from audioembed.model_folder import SAFETENSORS
from audioembed.nn import AudioEncoder
from audioembed.nn.export import save_model_folder


def average(folders: list[Path]) -> dict[str, torch.Tensor]:
    states = [load_file(str(f / SAFETENSORS)) for f in folders]
    if any(s.keys() != states[-1].keys() for s in states):
        raise SystemExit("the folders' weights do not have the same tensors: not one architecture")
    return {k: torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[-1].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("folders", type=Path, nargs="+")
    a = ap.parse_args()
    model = AudioEncoder(ModelConfig.load(a.folders[-1] / "config.json"))
    model.load_state_dict(average(a.folders))
    save_model_folder(model, a.out)
    print(f"wrote {a.out}: the mean of {len(a.folders)} folders' weights")


if __name__ == "__main__":
    main()
