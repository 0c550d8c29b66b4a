"""Numpy definitions of the log-mel frontend's constants (window, DFT basis, mel filterbank).

Shared by the torch module and by anything that needs the numbers without torch.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: ModelConfig) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular HTK filters without area norm, as torchaudio's defaults."""
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = np.linspace(0, cfg.sample_rate // 2, n_freqs)
    m_pts = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def hann_window(cfg: ModelConfig) -> np.ndarray:
    """Periodic Hann window of win_length, zero-padded to n_fft and centred (torch.stft's rule)."""
    n = np.arange(cfg.win_length)
    win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)
    left = (cfg.n_fft - cfg.win_length) // 2
    out = np.zeros(cfg.n_fft)
    out[left : left + cfg.win_length] = win
    return out


def used_bins(cfg: ModelConfig) -> int:
    """Number of leading FFT bins that any mel filter touches: the rest need not be computed."""
    fb = mel_filterbank(cfg)
    nonzero = np.nonzero(fb.sum(axis=1) > 0)[0]
    return int(nonzero[-1]) + 1


def windowed_dft_basis(cfg: ModelConfig, n_bins: int) -> np.ndarray:
    """(2*n_bins, n_fft): rows of window*cos then window*(-sin), so one matmul gives re and im."""
    n = np.arange(cfg.n_fft)
    k = np.arange(n_bins)[:, None]
    angle = 2.0 * np.pi * k * n / cfg.n_fft
    win = hann_window(cfg)
    return np.concatenate([np.cos(angle) * win, -np.sin(angle) * win], axis=0)


def n_frames(n_samples: int, cfg: ModelConfig) -> int:
    """Log-mel frames for a clip of n_samples with centre padding (torchaudio's center=True)."""
    return n_samples // cfg.hop_length + 1
