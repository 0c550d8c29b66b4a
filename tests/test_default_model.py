"""The shipped default model: complete, verified, loads offline from the bundled copy, and behaves."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from audioembed import Embedder, audio, hub, model_folder, record
from audioembed.config import ModelConfig

import reference

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "audioembed-base"
EXAMPLES = ROOT / "examples"


def test_shipped_folder_is_complete_and_its_digests_match():
    cfg = ModelConfig.load(MODEL / "config.json")
    assert (cfg.dim, cfg.readout, cfg.n_blocks) == (1024, "stacked", 3) and cfg.norm_std > 0  # v0.4.0: AudioNTT2020, stacked
    for name in ("model.safetensors", "model.onnx"):
        assert cfg.sha256[name] == model_folder.sha256(MODEL / name), name
    card = (MODEL / "README.md").read_text()
    assert cfg.sha256["model.onnx"] in card and "logmel-stats" in card  # the card carries the evaluation
    from audioembed import card as model_card

    assert model_card.missing_metadata(MODEL) == []  # a Hub card: licence, library, tags, pipeline tag
    rec = record.load(MODEL)  # training.json, beside an inference-only config.json
    assert rec.training["steps"] > 0 and rec.training["train_seconds"] > 0
    # No path of the machine that trained it: the data folder by name, nothing absolute in config, record or card.
    assert "/" not in rec.data["data_dir"]
    config_text = (MODEL / "config.json").read_text() + (MODEL / "training.json").read_text()
    for root in ("/work/", "/home/", "/tmp/", "/root/", "/Users/", "C:\\"):
        assert root not in config_text and root not in card, root


@pytest.fixture(scope="module")
def offline_default():
    """Embedder(): the bundled weights of the pinned revision, silently and with no hub call (nothing patched)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = Embedder(backend="onnx")
    return e


def test_default_embedder_offline_uses_the_bundled_weights(offline_default):
    assert offline_default.resolved.source == "bundled"
    assert offline_default.resolved.folder == MODEL and offline_default.resolved.revision == hub.DEFAULT_REVISION


def test_example_audio_gives_distinct_finite_vectors_on_both_backends(offline_default):
    files = sorted(EXAMPLES.glob("*.flac")) + sorted(EXAMPLES.glob("*.wav"))
    assert len(files) == 5
    onnx = offline_default.embed([str(f) for f in files])
    assert onnx.shape == (5, 1024) and np.isfinite(onnx).all()
    x = audio.load(files[0])  # the shipped weights against the independent numpy model of tests/reference.py
    np.testing.assert_allclose(offline_default.embed(x, sr=16000), reference.embedding(MODEL, x), rtol=0, atol=1e-4)
    torch_e = Embedder(offline_default.resolved.folder, backend="torch")
    np.testing.assert_allclose(torch_e.embed([str(f) for f in files]), onnx, rtol=1e-4, atol=1e-4)
    unit = onnx / np.linalg.norm(onnx, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert cos[~np.eye(5, dtype=bool)].max() < 0.999  # different sounds, different vectors


def test_a_sound_is_nearer_itself_at_another_rate_than_other_sounds(offline_default):
    """Resampling (44.1 kHz vs the file's own rate) must not move a vector as far as changing the sound does."""
    import soundfile as sf
    import soxr

    files = sorted(EXAMPLES.glob("*.flac"))
    vecs = offline_default.embed([str(f) for f in files])
    x, sr = sf.read(files[0], dtype="float32")
    moved = offline_default.embed(soxr.resample(x, sr, 44100), sr=44100)
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    same = float(unit(moved) @ unit(vecs[0]))
    others = [float(unit(moved) @ unit(v)) for v in vecs[1:]]
    assert same > 0.99 and same > max(others)
