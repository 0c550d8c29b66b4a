"""An independent numpy model of what an audioembed model computes, for tests to compare against.

Written from the published definitions (periodic Hann, rfft, HTK mel triangles, conv/BN/ReLU/max-pool,
BYOL-A's flatten, max + mean pooling), sharing no code with audioembed/mel.py or audioembed/nn/: a bug
there shows up as a difference here instead of cancelling out. float64 throughout; slow but small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def filterbank(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """(n_fft//2+1, n_mels) HTK-scale triangles, peak 1, no area normalisation (torchaudio's defaults)."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges = 700.0 * (10.0 ** (np.linspace(mel(f_min), mel(f_max), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rise = (freqs[:, None] - lo) / (mid - lo)
    fall = (hi - freqs[:, None]) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None)


def logmel(wave: np.ndarray, cfg) -> np.ndarray:
    """(N,) samples -> (n_mels, N // hop + 1) log-mel, centre (reflect) padded as torch.stft(center=True)."""
    x = np.pad(np.asarray(wave, np.float64), cfg.n_fft // 2, mode="reflect")
    frames = sliding_window_view(x, cfg.n_fft)[:: cfg.hop_length]
    window = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    window[left : left + cfg.win_length] = np.hanning(cfg.win_length + 1)[:-1]  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    fb = filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
    return np.log(power @ fb + cfg.log_eps).T


def normalised_logmel(wave: np.ndarray, cfg) -> np.ndarray:
    return (logmel(wave, cfg) - cfg.norm_mean) / cfg.norm_std


def _conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(C_in, F, T) -> (C_out, F, T), zero padding 1 (cross-correlation, as torch)."""
    patches = sliding_window_view(np.pad(x, ((0, 0), (1, 1), (1, 1))), (3, 3), axis=(1, 2))
    return np.einsum("cftij,ocij->oft", patches, weight) + bias[:, None, None]


def frames(folder: Path, wave: np.ndarray) -> np.ndarray:
    """Frame embeddings (T // 2**n_blocks, dim) of a model folder's weights for one 16 kHz clip."""
    from safetensors.numpy import load_file

    from audioembed.config import ModelConfig

    cfg = ModelConfig.load(Path(folder) / "config.json")
    w = {k: v.astype(np.float64) for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}
    shortest = max(cfg.time_reduction * cfg.hop_length, cfg.n_fft // 2 + 1)  # shorter clips: zero-padded
    wave = np.concatenate([wave, np.zeros(max(0, shortest - len(wave)))])
    x = normalised_logmel(wave, cfg)[None]  # (1, n_mels, T)
    for block in range(cfg.n_blocks):
        conv, bn = f"features.{4 * block}", f"features.{4 * block + 1}"
        x = _conv3x3(x, w[f"{conv}.weight"], w[f"{conv}.bias"])
        scale = w[f"{bn}.weight"] / np.sqrt(w[f"{bn}.running_var"] + 1e-5)
        x = (x - w[f"{bn}.running_mean"][:, None, None]) * scale[:, None, None] + w[f"{bn}.bias"][:, None, None]
        x = np.maximum(x, 0.0)
        c, f, t = x.shape
        x = x[:, : f // 2 * 2, : t // 2 * 2].reshape(c, f // 2, 2, t // 2, 2).max(axis=(2, 4))
    c, f, t = x.shape
    x = x.transpose(2, 1, 0).reshape(t, f * c)  # (T', mel * channels), channels fastest, as BYOL-A
    h = np.maximum(x @ w["fc.0.weight"].T + w["fc.0.bias"], 0.0)
    mlp = np.maximum(h @ w["fc.3.weight"].T + w["fc.3.bias"], 0.0)
    # BYOL-A v2 (AudioNTT2022): torch.hstack([conv map, MLP output]) per frame.
    return np.concatenate([x * cfg.stack_scale, mlp], axis=1) if cfg.readout == "stacked" else mlp


def embedding(folder: Path, wave: np.ndarray) -> np.ndarray:
    """Clip embedding: max over time plus mean over time of the frames."""
    f = frames(folder, wave)
    return f.max(axis=0) + f.mean(axis=0)
