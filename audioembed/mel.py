"""The log-mel frontend's numbers, defined once in numpy from config.json's fields.

The window, mel filterbank and DFT basis here build the torch module (nn.frontend.LogMel, a DFT
convolution exported inside model.onnx). `LogMel` below computes the same log-mel with numpy's FFT
for what runs outside the graph: the training cache and the log-mel baseline.
The graph keeps its DFT convolution, so that model.onnx alone maps waves to vectors anywhere; the ONNX
Runtime backend cuts it off at load (backends/graph_cut.py) and feeds the rest `PowerSpectrum` below:
scipy's FFT, which transforms many frames at once with SIMD, took a tenth of the convolution's time
(benchmarks/stft_split.py), where numpy's FFT and ONNX's STFT operator were no faster than the convolution.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_points(cfg: ModelConfig) -> np.ndarray:
    """(n_mels + 2,) equally spaced mel values: band b rises from point b, peaks at b + 1, falls to b + 2."""
    return np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)


def mel_filterbank(cfg: ModelConfig) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular HTK filters without area norm, as torchaudio's defaults."""
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = np.linspace(0, cfg.sample_rate // 2, n_freqs)
    f_pts = mel_to_hz(mel_points(cfg))
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


def centre_pad(wave: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """torch.stft's center=True: reflect n_fft//2 samples each side (too short to reflect: zero-extended first)."""
    pad = cfg.n_fft // 2
    x = np.asarray(wave, np.float32)
    if len(x) <= pad:
        x = np.concatenate([x, np.zeros(pad + 1 - len(x), np.float32)])
    return np.pad(x, pad, mode="reflect")


class PowerSpectrum:
    """(B, N) centre-padded waves -> (B, K, T) float32 power |STFT|^2 of the K bins a mel filter touches,
    T = (N - n_fft) // hop + 1: the tensor model.onnx's DFT convolution computes before its mel filterbank.
    workers: threads that share the frames (as ONNX Runtime's intra-op threads share the convolution).
    In float32, like the convolution: on 60 corpus clips their log-mels are off an exact (float64) one by a median
    of 1.0e-4 and 0.6e-4 (the worst: 0.011 and 0.0016, quiet bins beside loud ones). A float64 FFT is exact
    to 6e-8 but took most of the gain (2 threads, 10 s: 1.04x the convolution's speed, against 1.34x)."""

    def __init__(self, cfg: ModelConfig, workers: int = 1):
        import scipy.fft

        self.rfft, self.n_fft, self.hop, self.workers = scipy.fft.rfft, cfg.n_fft, cfg.hop_length, workers
        self.n_bins = used_bins(cfg)
        self.window = hann_window(cfg).astype(np.float32)

    def __call__(self, padded: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(np.asarray(padded, np.float32), self.n_fft, axis=-1)
        spec = self.rfft(frames[:, :: self.hop] * self.window, axis=-1, workers=self.workers)[..., : self.n_bins]
        power = spec.real * spec.real + spec.imag * spec.imag
        return np.ascontiguousarray(power.transpose(0, 2, 1), dtype=np.float32)


class LogMel:
    """Centre-padded samples (N,) -> log-mel (T, n_mels) float32, T = (N - n_fft) // hop + 1.

    torchaudio's MelSpectrogram(power=2, htk, norm=None) then log(x + log_eps): the numbers of
    nn.frontend.LogMel (tested against each other and against a stored torchaudio reference).
    """

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.n_bins = used_bins(cfg)
        self.window = hann_window(cfg).astype(np.float32)
        self.fb = np.ascontiguousarray(mel_filterbank(cfg)[: self.n_bins], dtype=np.float32)  # (K, n_mels)

    def __call__(self, padded: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        frames = np.lib.stride_tricks.sliding_window_view(np.asarray(padded, np.float32), cfg.n_fft)[:: cfg.hop_length]
        spec = np.fft.rfft(frames * self.window, axis=-1)[:, : self.n_bins]
        power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32, copy=False)
        return np.log(power @ self.fb + np.float32(cfg.log_eps))

    def of_wave(self, wave: np.ndarray) -> np.ndarray:
        """(N,) samples -> (N // hop + 1, n_mels): centre-padded first, as the model's frontend."""
        return self(centre_pad(wave, self.cfg))
