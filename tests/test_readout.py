"""The readout field: the MLP output alone (AudioNTT2020) or the conv map stacked beside it (AudioNTT2022)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audioembed import Embedder
from audioembed.config import ModelConfig
from audioembed.errors import ModelError

import reference
from conftest import build_tiny_model, noisy

ROOT = Path(__file__).resolve().parent.parent
STACKED = dict(readout="stacked", n_blocks=2, mlp_hidden=48, dim=8 * 16 + 24)  # conv part: 8 ch x 64/4 bands


@pytest.fixture(scope="module")
def stacked_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "stacked"
    build_tiny_model(out, seed=3, **STACKED)
    return out


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_stacked_frames_are_the_conv_map_then_the_mlp(stacked_dir, backend):
    """Checked against tests/reference.py (no shared code): the conv half, the MLP half and the order."""
    e = Embedder(stacked_dir, backend=backend)
    assert e.dim == 152 and e.config.conv_dim == 128 and e.config.mlp_out == 24
    x = noisy(seconds=2.3, seed=5)
    ref = reference.frames(stacked_dir, x)
    assert ref.shape[1] == 152
    got = e.embed_frames(x, sr=16000)
    assert got.embeddings.shape == (len(got.timestamps), 152)
    np.testing.assert_allclose(got.embeddings, ref, rtol=0, atol=2e-5)
    np.testing.assert_allclose(e.embed(x, sr=16000), reference.embedding(stacked_dir, x), rtol=0, atol=2e-5)


def test_torch_and_onnx_agree_on_the_stacked_readout(stacked_dir):
    clips = [noisy(seconds=s, seed=i) for i, s in enumerate((0.3, 1.7, 11.0))]
    a = Embedder(stacked_dir, backend="onnx").embed(clips, sr=16000)
    b = Embedder(stacked_dir, backend="torch").embed(clips, sr=16000)
    assert a.shape == (3, 152)
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)


def test_the_readout_fields_are_written_only_when_they_differ_from_audiontt2020(tiny_model_dir, stacked_dir):
    """Folders written before the field keep their bytes and their meaning."""
    plain = json.loads((tiny_model_dir / "config.json").read_text())
    assert "readout" not in plain and "mlp_hidden" not in plain
    assert ModelConfig.load(tiny_model_dir / "config.json").readout == "mlp"
    stacked = json.loads((stacked_dir / "config.json").read_text())
    assert stacked["readout"] == "stacked" and stacked["mlp_hidden"] == 48 and stacked["n_blocks"] == 2
    assert "stack_scale" not in plain and "stack_scale" not in stacked  # written only where it is not 1


@pytest.fixture(scope="module")
def balanced_dir(stacked_dir, tmp_path_factory):
    """The stacked model's weights with stack_scale set by scripts/readout_folder.py from unlabelled audio."""
    import soundfile as sf

    audio = tmp_path_factory.mktemp("unlabelled")
    for i in range(5):
        sf.write(audio / f"{i}.wav", noisy(seconds=1.0 + 0.3 * i, seed=40 + i), 16000)
    out = tmp_path_factory.mktemp("models") / "balanced"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "readout_folder.py"), str(stacked_dir), "-o", str(out),
                    "--stack-scale-from", str(audio)], check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return out, audio


def test_stack_scale_balances_the_halves_and_keeps_each_halfs_direction(stacked_dir, balanced_dir):
    """Set from audio, the halves' norms meet (median over the clips); torch, ONNX and the reference agree; the conv
    half is the plain one times the scale and the MLP half is untouched."""
    out, audio = balanced_dir
    cfg = ModelConfig.load(out / "config.json")
    files = sorted(str(p) for p in audio.glob("*.wav"))
    plain = Embedder(stacked_dir, backend="onnx").embed(files)
    conv, mlp = np.linalg.norm(plain[:, :128], axis=1), np.linalg.norm(plain[:, 128:], axis=1)
    assert cfg.stack_scale == pytest.approx(np.median(mlp / conv), rel=1e-3) and cfg.stack_scale != pytest.approx(1.0)
    for backend in ("onnx", "torch"):
        got = Embedder(out, backend=backend).embed(files)
        np.testing.assert_allclose(got[:, :128], plain[:, :128] * cfg.stack_scale, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(got[:, 128:], plain[:, 128:], rtol=0, atol=2e-5)
        halves = np.linalg.norm(got[:, :128], axis=1) / np.linalg.norm(got[:, 128:], axis=1)
        assert np.median(halves) == pytest.approx(1.0, rel=1e-3)
    x = noisy(seconds=2.3, seed=5)
    np.testing.assert_allclose(Embedder(out, backend="onnx").embed(x, sr=16000), reference.embedding(out, x), rtol=0, atol=2e-5)
    assert json.loads((out / "config.json").read_text())["stack_scale"] == cfg.stack_scale


@pytest.mark.parametrize("bad", [dict(STACKED, stack_scale=0.0), dict(STACKED, stack_scale=float("nan")),
                                 dict(STACKED, stack_scale=True), dict(stack_scale=0.5)])
def test_bad_stack_scales_are_refused_naming_the_key(bad):
    with pytest.raises(ModelError, match="stack_scale"):
        ModelConfig(**bad)


def test_parameter_count_follows_the_readout():
    cfg = ModelConfig(**STACKED, channels=8)
    conv = (9 + 1) * 8 + (9 * 8 + 1) * 8 + 2 * 2 * 8
    assert cfg.n_parameters == conv + (128 + 1) * 48 + (48 + 1) * 24


@pytest.mark.parametrize("bad", [dict(readout="concat"), dict(readout="stacked", dim=512),
                                 dict(mlp_hidden=0), dict(mlp_hidden=1.5)])
def test_bad_readouts_are_refused_naming_the_key(bad):
    with pytest.raises(ModelError, match="readout|mlp_hidden|dim"):
        ModelConfig(**bad)


def test_the_hear_sizes_follow_the_stacked_dim(stacked_dir):
    from audioembed.integrations import hear

    m = hear.load_model(str(stacked_dir))
    assert m.scene_embedding_size == m.timestamp_embedding_size == 152


def test_the_card_names_the_architecture_and_readout():
    from audioembed import card

    plain = card.body(ModelConfig(name="p"))
    assert "AudioNTT2020-style CNN (3 conv blocks × 64 channels, an MLP of 512 hidden units; each frame is the MLP's 512 outputs)" in plain
    text = card.body(ModelConfig(name="s", n_blocks=2, mlp_hidden=2048, dim=2048, readout="stacked"))
    assert "2048-d clip embeddings" in text
    assert "AudioNTT2022-style CNN (2 conv blocks × 64 channels, an MLP of 2048 hidden units; each frame stacks the last conv map's 1024 values beside the MLP's 1024)" in text
    balanced = card.body(ModelConfig(name="s", n_blocks=2, mlp_hidden=2048, dim=2048, readout="stacked", stack_scale=0.31))
    assert "the last conv map's 1024 values, times 0.31 so both halves weigh alike in cosine, beside the MLP's 1024" in balanced
    stacked_2020 = card.body(ModelConfig(name="s", dim=1024, readout="stacked"))  # three blocks: still AudioNTT2020
    assert ("AudioNTT2020-style CNN read out as AudioNTT2022 is (3 conv blocks × 64 channels, an MLP of 512 hidden units; "
            "each frame stacks the last conv map's 512 values beside the MLP's 512)") in stacked_2020


@pytest.mark.parametrize("n_blocks", [1, 2, 4])
def test_windows_stitch_exactly_for_other_block_counts(tmp_path, n_blocks):
    """The window context follows n_blocks (no constant capping it at 3): a clip longer than one window gives the
    frames of tests/reference.py's single pass over the whole clip."""
    from audioembed import windows

    folder = tmp_path / f"b{n_blocks}"
    build_tiny_model(folder, seed=n_blocks, n_blocks=n_blocks, readout="stacked", dim=8 * 64 // 2**n_blocks + 8)
    e = Embedder(folder, backend="onnx")
    x = noisy(seconds=2.5, seed=n_blocks)
    cut = list(windows.cut([x], e.config, window_frames=4))
    assert len(cut) >= 3  # several windows, stitched
    ref = reference.frames(folder, x)
    frames = np.concatenate([w for w in _window_frames(e, cut)])
    np.testing.assert_allclose(frames, ref, rtol=0, atol=3e-5)


def _window_frames(e, cut):
    """Run each window through the backend and keep the frames it is responsible for."""
    for w in cut:
        out = e.backend.run(w.wave[None].astype(np.float32), np.array([w.n_frames], np.int64))[0]
        yield out[w.keep[0] - w.first_out : w.keep[1] - w.first_out]
