"""The log-mel of audioembed.mel computed with torch.stft, for the torch backend (batches on a GPU)."""

from __future__ import annotations

import torch
from torch import nn

from .. import mel
from ..config import ModelConfig


class LogMel(nn.Module):
    """Centre-padded waves (B, N) -> log-mel (B, n_mels, T): mel.LogMel's numbers (tested to agree)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_fft, self.hop_length, self.log_eps = cfg.n_fft, cfg.hop_length, cfg.log_eps
        self.n_bins = mel.used_bins(cfg)
        fb = torch.tensor(mel.mel_filterbank(cfg)[: self.n_bins].T.copy(), dtype=torch.float32)
        self.register_buffer("window", torch.tensor(mel.hann_window(cfg), dtype=torch.float32), persistent=False)
        self.register_buffer("fb", fb, persistent=False)  # (n_mels, K)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop_length, window=self.window, center=False, return_complex=True)
        spec = spec[:, : self.n_bins]  # (B, K, T)
        return torch.log(torch.matmul(self.fb, spec.real.square() + spec.imag.square()) + self.log_eps)
