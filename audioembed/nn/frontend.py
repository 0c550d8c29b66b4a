"""Log-mel frontend as plain tensor ops (a strided conv for the STFT), so it exports to ONNX."""

from __future__ import annotations

import torch
from torch import nn

from .. import mel
from ..config import ModelConfig


class LogMel(nn.Module):
    """Waveform (B, N), already centre-padded by n_fft//2 each side -> log-mel (B, n_mels, T).

    Matches torchaudio.transforms.MelSpectrogram(power=2, center=True, htk, norm=None) followed
    by log(x + eps). Only the FFT bins a mel filter touches are computed.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.hop_length = cfg.hop_length
        self.log_eps = cfg.log_eps
        n_bins = mel.used_bins(cfg)
        self.n_bins = n_bins
        basis = torch.tensor(mel.windowed_dft_basis(cfg, n_bins), dtype=torch.float32)
        fb = torch.tensor(mel.mel_filterbank(cfg)[:n_bins].T.copy(), dtype=torch.float32)
        self.register_buffer("basis", basis.unsqueeze(1), persistent=False)  # (2K, 1, n_fft)
        self.register_buffer("fb", fb, persistent=False)  # (n_mels, K)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = nn.functional.conv1d(wave.unsqueeze(1), self.basis, stride=self.hop_length)
        re, im = spec[:, : self.n_bins], spec[:, self.n_bins :]
        power = re * re + im * im  # (B, K, T)
        return torch.log(torch.matmul(self.fb, power) + self.log_eps)
