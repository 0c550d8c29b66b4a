"""The HEAR 2021 API: the official validator (hearvalidator) and the values behind it."""

import importlib.util
import sys

import numpy as np
import pytest
import torch

from audioembed import Embedder
from audioembed.integrations import hear

from conftest import noisy, tone


def test_hearvalidator_accepts_the_module(tiny_model_dir, monkeypatch, capsys):
    """The documented line, `python -m audioembed.hear hearvalidator.validate audioembed.hear -m MODEL`: hearvalidator
    (installed with --no-deps, as scripts/test.sh does) imports tensorflow only to recognise TF models, and the
    runner gives it a stand-in, so its torch checks run without TensorFlow."""
    if importlib.util.find_spec("hearvalidator") is None:
        pytest.skip("hearvalidator is not installed (scripts/test.sh installs it)")
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed: the stand-in is not used")
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    try:
        assert hear._main(["hearvalidator.validate", "audioembed.hear", "-m", str(tiny_model_dir), "-d", "cpu"]) == 0
        stand_in = sys.modules["tensorflow"]
        assert not isinstance(hear.load_model(str(tiny_model_dir)), stand_in.Module)
    finally:
        sys.modules.pop("tensorflow", None)
    out = capsys.readouterr().out
    assert "Received torch Module" in out and out.rstrip().endswith("Looks good!")
    assert "Received embedding of shape: torch.Size([16, 25, 32])" in out  # 2 s of audio, a frame per 80 ms
    assert "Received embedding of shape: torch.Size([8, 32])" in out
    assert "Interval between timestamps is 80.0ms" in out
    assert hear._main([]) == 2 and "usage: python -m audioembed.hear MODULE" in capsys.readouterr().err


def test_hear_values_match_the_embedder(tiny_model_dir):
    model = hear.load_model(str(tiny_model_dir), backend="onnx")
    assert (model.sample_rate, model.scene_embedding_size, model.timestamp_embedding_size) == (16000, 32, 32)
    audio = torch.from_numpy(np.stack([tone(440, seconds=1.5), noisy(seconds=1.5)]))
    scene = hear.get_scene_embeddings(audio, model)
    embedder = Embedder(tiny_model_dir, backend="onnx")
    assert scene.dtype == torch.float32 and scene.shape == (2, 32)
    np.testing.assert_allclose(scene.numpy(), embedder.embed(list(audio.numpy()), sr=16000), atol=1e-6)
    frames, stamps = hear.get_timestamp_embeddings(audio, model)
    expected = embedder.embed_frames(audio[1].numpy(), sr=16000)
    assert frames.shape == (2, len(expected.embeddings), 32) and stamps.shape == (2, len(expected.embeddings))
    np.testing.assert_allclose(frames[1].numpy(), expected.embeddings, atol=1e-6)
    np.testing.assert_allclose(stamps[0].numpy(), expected.timestamps)
    assert stamps[0, 0] == pytest.approx(35.0) and torch.diff(stamps[0]).allclose(torch.tensor(80.0))  # centres, ms
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(audio[0], model)


def test_hear_scales_integer_pcm_and_refuses_what_is_not_audio(tiny_model_dir):
    from audioembed import AudioError

    model = hear.load_model(str(tiny_model_dir), backend="onnx")
    pcm = torch.from_numpy(np.round(np.stack([tone(440, seconds=1.5), noisy(seconds=1.5)]) * 20000).astype(np.int16))
    as_float = pcm.float() / 32768
    expected = hear.get_scene_embeddings(as_float, model).numpy()
    scene = hear.get_scene_embeddings(pcm, model).numpy()
    cosine = (scene * expected).sum(1) / np.linalg.norm(scene, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.99999
    np.testing.assert_allclose(scene, expected, atol=1e-5)
    frames, _ = hear.get_timestamp_embeddings(pcm, model)
    np.testing.assert_allclose(frames.numpy(), hear.get_timestamp_embeddings(as_float, model)[0].numpy(), atol=1e-5)
    for bad in (pcm > 0, torch.complex(as_float, as_float)):
        with pytest.raises(AudioError, match=f"HEAR audio of dtype {bad.dtype} is not audio samples; pass float"):
            hear.get_scene_embeddings(bad, model)
        with pytest.raises(AudioError, match="is not audio samples"):
            hear.get_timestamp_embeddings(bad, model)
