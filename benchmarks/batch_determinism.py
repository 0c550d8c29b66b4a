"""How much a clip's vector moves when it is batched with other clips (README: Determinism).

Embeds 12 clips (50 ms to 25 s) one at a time (batch_size=1), then in shuffled lists with batch sizes
2, 4, 16 and 1 or 3 decoding workers, on both backends, and prints the largest difference.
Models: randomly initialised, the tests' tiny config and the default 512-d config (or --model FOLDER).

    python benchmarks/batch_determinism.py [--model FOLDER]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from audioembed import Embedder


def random_model(out: Path, **overrides) -> Path:
    import torch

    from audioembed.config import ModelConfig
    from audioembed.nn import AudioEncoder
    from audioembed.nn.export import save_model_folder

    torch.manual_seed(0)
    model = AudioEncoder(ModelConfig(norm_mean=-6.0, norm_std=5.0, **overrides))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    save_model_folder(model, out)
    return out


def clips() -> list[np.ndarray]:
    out = []
    for i, seconds in enumerate([0.05, 0.3, 1.0, 2.2, 4.0, 7.5, 11.0, 13.0, 0.9, 3.3, 25.0, 0.5]):
        rng = np.random.default_rng(i)
        t = np.arange(int(16000 * seconds)) / 16000
        out.append((0.1 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))
    return out


def measure(folder: Path, backend: str) -> tuple[float, float]:
    xs = clips()
    alone = Embedder(folder, backend=backend, batch_size=1, num_workers=1)
    single = np.stack([alone.embed(x, sr=16000) for x in xs])
    rng = np.random.default_rng(0)
    worst_abs = worst_rel = 0.0
    for batch_size in (2, 4, 16):
        for workers in (1, 3):
            e = Embedder(folder, backend=backend, batch_size=batch_size, num_workers=workers)
            for _ in range(3):
                order = rng.permutation(len(xs))
                diff = np.abs(e.embed([xs[i] for i in order], sr=16000) - single[order])
                worst_abs = max(worst_abs, float(diff.max()))
                worst_rel = max(worst_rel, float((diff.max(1) / np.abs(single[order]).max(1)).max()))
    return worst_abs, worst_rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model folder (default: two random models)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = {"given": args.model} if args.model else {
            "tiny (dim 32)": random_model(Path(tmp) / "tiny", dim=32, channels=8),
            "default (dim 512)": random_model(Path(tmp) / "default"),
        }
        for name, folder in models.items():
            for backend in ("onnx", "torch"):
                worst_abs, worst_rel = measure(folder, backend)
                print(f"{name:18} {backend:6} max |diff| {worst_abs:.2e}   max |diff| / max |v| {worst_rel:.2e}")


if __name__ == "__main__":
    main()
