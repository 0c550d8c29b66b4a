"""The shipped model's outputs, byte for byte: refactors of the package must not move a single bit.

tests/data/golden_outputs-KERNELS.npz were written by tests/data/make_golden_outputs.py (read it before
regenerating), one per kind of CPU kernels: bytes are compared with this machine's kind's file; on a kind with no
file, values are compared with every file within 1e-4 (AVX2 and AVX-512 differ by up to 5e-5, torch on a clip shorter
than one window, 6e-7 elsewhere; a refactor's bug moves far more than that).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_golden_outputs as golden  # noqa: E402

SETS = {p.stem.removeprefix("golden_outputs-"): dict(np.load(p)) for p in sorted(Path(__file__).parent.glob("data/golden_outputs-*.npz"))}
KERNELS = golden.kernels()
GOLDEN = SETS.get(KERNELS) or next(iter(SETS.values()))  # the keys are the same in every set


def _same_bits(got: np.ndarray, key: str, kernels: str = KERNELS) -> None:
    """Bytes equal to this kind's file; on a kind with no file, equal within float32 rounding to every file's."""
    for kind, arrays in SETS.items() if kernels not in SETS else [(kernels, SETS[kernels])]:
        want = arrays[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        diff = f"{kind} {key}: max |diff| {np.abs(got.astype(np.float64) - want).max():.3g}"
        if kernels in SETS:
            assert got.tobytes() == want.tobytes(), diff
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=diff)


def test_every_set_holds_the_same_arrays_and_this_kind_is_known_or_close():
    outputs = lambda arrays: {k for k in arrays if "/" in k}  # (beside "version" and "kernels")
    assert SETS and all(outputs(arrays) == outputs(GOLDEN) for arrays in SETS.values())
    assert all(str(arrays["kernels"]) == kind for kind, arrays in SETS.items() if "kernels" in arrays)
    got = golden.compute("onnx")
    # a kind with no file of its own: within rounding of every set, and a real change (1e-3) is still caught
    _same_bits(got["onnx/chirp"], "onnx/chirp", kernels="no-such-kind")
    with pytest.raises(AssertionError):
        _same_bits(got["onnx/chirp"] + np.float32(1e-3), "onnx/chirp", kernels="no-such-kind")


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_the_api_gives_the_shipped_models_bytes(backend):
    got = golden.compute(backend)
    assert sorted(got) == sorted(k for k in GOLDEN if k.startswith(backend + "/"))
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
