"""Peers' architectures, written from their papers and reference code; random weights (speed only).

- AudioNTT2020: BYOL-A (Niizumi et al. 2021) as its authors wrote it: eager PyTorch, a
  torchaudio-style MelSpectrogram (torch.stft + mel matmul, written in plain torch because
  torchaudio is not a dependency), log(x + eps), normalisation, the CNN, max + mean pooling.
- CNN14: PANNs (Kong et al. 2020) as panns_inference ships it: 32 kHz input, torchlibrosa-style
  conv STFT over all 513 bins, log-mel (power_to_db), bn0, six double-conv blocks with 2x2
  average pooling, max + mean over time, fc1 and the 527-class head.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audioembed import mel
from audioembed.config import ModelConfig


class TorchaudioStyleMelSpectrogram(nn.Module):
    """torchaudio.transforms.MelSpectrogram(power=2, center=True, reflect) as torchaudio computes it."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_fft, self.hop, self.win_length = cfg.n_fft, cfg.hop_length, cfg.win_length
        self.register_buffer("window", torch.hann_window(cfg.win_length))
        self.register_buffer("fb", torch.tensor(mel.mel_filterbank(cfg), dtype=torch.float32))  # (n_freqs, n_mels)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            wave, self.n_fft, self.hop, self.win_length, self.window,
            center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
        )
        power = spec.abs().pow(2.0)  # (B, n_freqs, T)
        return torch.matmul(power.transpose(-1, -2), self.fb).transpose(-1, -2)


class AudioNTT2020(nn.Module):
    """BYOL-A's AudioNTT2020 (AudioNTT2020Task6 + max/mean pooling) behind its log-mel preprocessing."""

    def __init__(self, cfg: ModelConfig, n_mels: int = 64, d: int = 512):
        super().__init__()
        self.to_melspec = TorchaudioStyleMelSpectrogram(cfg)
        self.eps = torch.finfo(torch.float32).eps
        self.mean, self.std = -6.0, 5.0
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, stride=2),
            nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, stride=2),
            nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, stride=2),
        )
        self.fc = nn.Sequential(
            nn.Linear(64 * (n_mels // (2**3)), d), nn.ReLU(), nn.Dropout(p=0.3), nn.Linear(d, d), nn.ReLU(),
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = (self.to_melspec(wave) + self.eps).log()
        x = ((x - self.mean) / self.std).unsqueeze(1)
        x = self.features(x)  # (batch, ch, mel, time)
        x = x.permute(0, 3, 2, 1)  # (batch, time, mel, ch)
        b, t, d, c = x.shape
        x = self.fc(x.reshape((b, t, c * d)))
        x1, _ = torch.max(x, dim=1)
        return x1 + torch.mean(x, dim=1)


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(out_channels), nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool_size=(2, 2)) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool_size)


class Cnn14(nn.Module):
    """panns_inference's Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000)."""

    sample_rate = 32000

    def __init__(self, n_fft: int = 1024, hop: int = 320, n_mels: int = 64, classes: int = 527):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        bins = n_fft // 2 + 1
        # torchlibrosa STFT: two Conv1d (real, imaginary) with windowed DFT kernels over all bins.
        n = np.arange(n_fft)
        angle = 2 * np.pi * np.arange(bins)[:, None] * n / n_fft
        win = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop, bias=False)
        self.conv_real.weight.data = torch.tensor(np.cos(angle) * win, dtype=torch.float32)[:, None, :]
        self.conv_imag.weight.data = torch.tensor(-np.sin(angle) * win, dtype=torch.float32)[:, None, :]
        mel_cfg = ModelConfig(sample_rate=32000, n_fft=n_fft, win_length=n_fft, hop_length=hop, n_mels=n_mels, f_min=50, f_max=14000)
        self.register_buffer("melW", torch.tensor(mel.mel_filterbank(mel_cfg), dtype=torch.float32))  # (bins, mels)
        self.bn0 = nn.BatchNorm2d(n_mels)
        chans = (1, 64, 128, 256, 512, 1024, 2048)
        self.blocks = nn.ModuleList(ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.fc1 = nn.Linear(2048, 2048, bias=True)
        self.fc_audioset = nn.Linear(2048, classes, bias=True)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real, imag = self.conv_real(x), self.conv_imag(x)  # (B, bins, T)
        x = (real**2 + imag**2).transpose(1, 2)[:, None]  # (B, 1, T, bins)
        x = torch.matmul(x, self.melW)  # (B, 1, T, mels)
        x = 10.0 * torch.log10(torch.clamp(x, min=1e-10))  # power_to_db, ref=1, top_db=None
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i, block in enumerate(self.blocks):
            x = block(x, pool_size=(2, 2) if i < 5 else (1, 1))
        x = torch.mean(x, dim=3)
        x1, _ = torch.max(x, dim=2)
        x = x1 + torch.mean(x, dim=2)
        embedding = F.relu_(self.fc1(x))
        return torch.sigmoid(self.fc_audioset(embedding))
