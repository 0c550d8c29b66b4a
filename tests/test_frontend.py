"""The log-mel frontend (numpy FFT, and torch.stft for the torch backend) against torchaudio's MelSpectrogram."""

from pathlib import Path

import numpy as np
import torch

from audioembed import mel
from audioembed.config import ModelConfig
from audioembed.nn import LogMel

import reference

REF = Path(__file__).parent / "data" / "torchaudio_melspec.npz"


def test_numpy_frontend_matches_torchaudio_reference():
    ref = np.load(REF)
    cfg = ModelConfig()
    wave = ref["wave"]
    ours = mel.LogMel(cfg)(mel.centre_pad(wave, cfg))
    assert ours.dtype == np.float32
    assert ours.shape == ref["logmel"].shape == (64, mel.n_frames(len(wave), cfg))
    # float32 FFT against torchaudio's float32 FFT: rounding only.
    np.testing.assert_allclose(ours, ref["logmel"], atol=2e-4, rtol=0)


def test_torch_frontend_matches_the_numpy_one_in_a_batch():
    """The torch backend's torch.stft frontend gives the numbers the ONNX backend feeds its graph."""
    ref = np.load(REF)
    cfg = ModelConfig()
    padded = mel.centre_pad(ref["wave"], cfg)
    batch = np.stack([padded, padded[::-1].copy() * 0.1])
    ours = LogMel(cfg)(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(ours, mel.LogMel(cfg)(batch), atol=2e-4, rtol=0)
    np.testing.assert_allclose(ours[0], ref["logmel"], atol=2e-4, rtol=0)


def test_numpy_reference_matches_torchaudio():
    """tests/reference.py (rfft, its own filterbank) is what the Embedder tests compare against: check it too."""
    ref = np.load(REF)
    cfg = ModelConfig()
    np.testing.assert_allclose(reference.logmel(ref["wave"], cfg), ref["logmel"], atol=2e-4, rtol=0)


def test_normalised_uses_the_config_statistics():
    cfg = ModelConfig(norm_mean=-3.0, norm_std=2.0)
    padded = mel.centre_pad(np.random.default_rng(0).standard_normal(4000).astype(np.float32), cfg)
    front = mel.LogMel(cfg)
    np.testing.assert_allclose(front.normalised(padded), (front(padded) + 3.0) / 2.0, rtol=1e-6)


def test_short_clip_is_zero_extended_before_reflect_padding():
    cfg = ModelConfig()
    padded = mel.centre_pad(np.ones(10, np.float32), cfg)
    assert len(padded) == 2 * (cfg.n_fft // 2) + cfg.n_fft // 2 + 1
    assert mel.LogMel(cfg)(padded).shape == (cfg.n_mels, mel.n_frames(cfg.n_fft // 2 + 1, cfg))


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
