"""The log-mel frontend against torchaudio's MelSpectrogram (stored reference) and its ONNX export."""

from pathlib import Path

import numpy as np
import torch

from audioembed import mel
from audioembed.config import ModelConfig
from audioembed.nn import LogMel

import reference

REF = Path(__file__).parent / "data" / "torchaudio_melspec.npz"


def test_matches_torchaudio_reference():
    ref = np.load(REF)
    cfg = ModelConfig()
    wave = ref["wave"]
    padded = np.pad(wave, cfg.n_fft // 2, mode="reflect")
    ours = LogMel(cfg)(torch.from_numpy(padded)[None])[0].numpy()
    assert ours.shape == ref["logmel"].shape == (64, mel.n_frames(len(wave), cfg))
    # log domain: compare where there is energy; allow float32 DFT-vs-FFT rounding.
    np.testing.assert_allclose(ours, ref["logmel"], atol=2e-3, rtol=0)


def test_numpy_reference_matches_torchaudio_and_the_model_frontend():
    """tests/reference.py (rfft, its own filterbank) is what the Embedder tests compare against: check it too."""
    ref = np.load(REF)
    cfg = ModelConfig()
    ours = reference.logmel(ref["wave"], cfg)
    np.testing.assert_allclose(ours, ref["logmel"], atol=2e-4, rtol=0)
    padded = np.pad(ref["wave"], cfg.n_fft // 2, mode="reflect")
    np.testing.assert_allclose(LogMel(cfg)(torch.from_numpy(padded)[None])[0].numpy(), ours, atol=2e-3, rtol=0)


def test_numpy_fft_logmel_matches_torchaudio_and_the_graph_frontend():
    """mel.LogMel (training cache, log-mel baseline) and the exported DFT convolution: the same numbers."""
    ref = np.load(REF)
    cfg = ModelConfig()
    ours = mel.LogMel(cfg).of_wave(ref["wave"]).T
    assert ours.shape == ref["logmel"].shape
    np.testing.assert_allclose(ours, ref["logmel"], atol=2e-4, rtol=0)
    padded = mel.centre_pad(ref["wave"], cfg)
    np.testing.assert_allclose(LogMel(cfg)(torch.from_numpy(padded)[None])[0].numpy(), ours, atol=2e-3, rtol=0)
    for n in (1, cfg.n_fft // 2, cfg.n_fft // 2 + 1, cfg.hop_length * 3 + 7):  # too short to reflect, and the edges
        wave = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        out = mel.LogMel(cfg).of_wave(wave)
        assert out.shape == (mel.n_frames(max(n, cfg.n_fft // 2 + 1), cfg), cfg.n_mels) and np.isfinite(out).all()


def test_unused_fft_bins_are_skipped_without_changing_the_result():
    cfg = ModelConfig()
    fb = mel.mel_filterbank(cfg)
    k = mel.used_bins(cfg)
    assert k < cfg.n_fft // 2 + 1
    assert np.all(fb[k:] == 0) and np.any(fb[k - 1] > 0)


def test_filterbank_peaks_rise_through_the_band():
    cfg = ModelConfig()
    fb = mel.mel_filterbank(cfg)
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) >= 0)
    freqs = np.linspace(0, cfg.sample_rate / 2, fb.shape[0])
    assert freqs[peaks[0]] >= cfg.f_min - 20 and freqs[peaks[-1]] <= cfg.f_max + 20


def test_every_config_key_has_its_place_in_the_named_views():
    """A new ModelConfig key is either frontend (a log-mel cache and --init-from compare it), architecture, or one
    of the few others: listed in one place, so that no hand-made list elsewhere misses it."""
    import dataclasses

    from audioembed import ModelConfig

    others = {"name", "norm_mean", "norm_std", "stack_scale", "sha256", "extra"}  # set after training
    views = [set(ModelConfig.FRONTEND), set(ModelConfig.ARCHITECTURE), others]
    assert {f.name for f in dataclasses.fields(ModelConfig)} == set.union(*views) and sum(map(len, views)) == len(set.union(*views))
    cfg = ModelConfig(n_mels=32, dim=16)
    assert cfg.frontend()["n_mels"] == 32 and cfg.architecture()["dim"] == 16 and "sha256" not in cfg.numbers()
