"""The shipped model's outputs, byte for byte: refactors of the package must not move a single bit.

tests/data/golden_outputs.npz was written by tests/data/make_golden_outputs.py (read it before regenerating).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_golden_outputs as golden  # noqa: E402

GOLDEN = np.load(Path(__file__).parent / "data" / "golden_outputs.npz")


def _same_bits(got: np.ndarray, key: str) -> None:
    want = GOLDEN[key]
    assert got.dtype == want.dtype and got.shape == want.shape, key
    assert got.tobytes() == want.tobytes(), f"{key}: max |diff| {np.abs(got.astype(np.float64) - want).max():.3g}"


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_the_api_gives_the_shipped_models_bytes(backend):
    got = golden.compute(backend)
    assert sorted(got) == sorted(k for k in GOLDEN.files if k.startswith(backend + "/"))
    for key, value in got.items():
        _same_bits(value, key)


def test_a_batch_gives_the_same_bytes_as_one_clip_at_a_time():
    from audioembed import Embedder

    clips = golden.clips()
    batch = Embedder(backend="onnx").embed([x for x, _ in clips.values()], sr=[sr for _, sr in clips.values()])
    for row, name in zip(batch, clips):
        _same_bits(row, f"onnx/{name}")


def test_the_cli_writes_the_shipped_models_bytes(tmp_path):
    from audioembed.cli import app

    src = tmp_path / "in"
    src.mkdir()
    for name, (x, sr) in golden.clips().items():
        sf.write(src / f"{name}.wav", x, sr, subtype="FLOAT")  # float WAV: the samples come back exactly
    runner = CliRunner()
    tree, stack = tmp_path / "tree", tmp_path / "stack"
    assert runner.invoke(app, ["embed", str(src), "-o", str(tree), "--frames", "-q"]).exit_code == 0
    assert runner.invoke(app, ["embed", str(src), "-o", str(stack), "--stack", "-q"]).exit_code == 0
    rows = (stack / "index.csv").read_text().splitlines()
    matrix = np.load(stack / "embeddings.npy")
    for name in golden.clips():
        _same_bits(np.load(tree / f"{name}.npy"), f"onnx/{name}")
        _same_bits(np.load(tree / f"{name}.frames.npy"), f"onnx/{name}/frames")
        _same_bits(np.load(tree / f"{name}.timestamps.npy"), f"onnx/{name}/timestamps")
        (i,) = [i for i, row in enumerate(rows[1:]) if f"{name}.wav" in row]
        _same_bits(matrix[i], f"onnx/{name}")
