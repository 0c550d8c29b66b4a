"""The generated three-class `tones` dataset that docs/evaluate.md's example runs on (and tests/test_eval.py uses).

python scripts/data/make_tones.py OUT_DIR     # writes OUT_DIR/tones/{low,high,noise}/*.wav, 10 clips each
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SR = 16000
CLASSES = ("low", "high", "noise")


def clip(label: str, rng: np.random.Generator) -> np.ndarray:
    """Three easily separated sound types, each varied in pitch, level and a little noise."""
    t = np.arange(int(0.5 * SR)) / SR
    amp = rng.uniform(0.2, 0.6)
    if label == "noise":
        wave = amp * rng.standard_normal(len(t)) * 0.5
    else:
        freq = rng.uniform(200, 300) if label == "low" else rng.uniform(2000, 3000)
        wave = amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def make_tones(parent: Path, per_class: int = 10) -> Path:
    import soundfile as sf

    root = Path(parent) / "tones"
    rng = np.random.default_rng(0)
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            sf.write(root / label / f"{label}{i}.wav", clip(label, rng), SR)
    return root


if __name__ == "__main__":
    print(make_tones(Path(sys.argv[1])))
