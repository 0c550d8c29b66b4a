"""BYOL-A's CNN (AudioNTT2020, or AudioNTT2022's stacked readout) with the log-mel frontend inside, so one graph
maps waves to vectors."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from .frontend import LogMel


def _valid_mask(n_valid: torch.Tensor, length: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, length) mask that is 1 for the first n_valid[b] time steps of each item."""
    steps = torch.arange(length, device=like.device)
    return (steps[None, :] < n_valid[:, None]).to(like.dtype)[:, None, None, :]


class AudioEncoder(nn.Module):
    """log-mel -> normalise -> n_blocks x (conv3x3, BN, maxpool2, ReLU) -> per-frame MLP [stacked beside the conv map].

    `forward(wave, n_frames)` returns frame embeddings (B, T // 2**n_blocks, dim). Items of a
    batch may be zero-padded: time steps past each item's n_frames are zeroed before every
    convolution, which is exactly the zero padding that item would get alone, so a padded batch
    gives the same numbers as one item at a time. Clip pooling (mean + max) happens outside.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(cfg)
        layers: list[nn.Module] = []
        in_ch = 1
        for _ in range(cfg.n_blocks):
            layers += [
                nn.Conv2d(in_ch, cfg.channels, 3, padding=1),
                nn.BatchNorm2d(cfg.channels),
                # Max-pooling before the ReLU gives the same numbers and gradients (both are monotone:
                # relu(max(a, b)) == max(relu(a), relu(b))) with the ReLU on a map 4x smaller; in place,
                # since max-pool's backward keeps only its input and indices. CPU training 1.1-1.2x faster (docs/experiments/cpu-speed.md).
                nn.MaxPool2d(2, stride=2),
                nn.ReLU(inplace=True),
            ]
            in_ch = cfg.channels
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(cfg.conv_dim, cfg.hidden),
            nn.ReLU(),
            nn.Dropout(p=0.3),
            nn.Linear(cfg.hidden, cfg.mlp_out),
            nn.ReLU(),
        )
        self.stacked = cfg.readout == "stacked"

    def normalised_logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) centre-padded wave -> (B, 1, n_mels, T) log-mel standardised by dataset stats."""
        x = self.frontend(wave)
        return ((x - self.cfg.norm_mean) / self.cfg.norm_std).unsqueeze(1)

    def frames_from_mel(self, x: torch.Tensor, n_frames: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, n_mels, T) normalised log-mel -> (B, T // 2**n_blocks, dim)."""
        for i, layer in enumerate(self.features):
            if n_frames is not None and i % 4 == 0:  # before each conv
                x = x * _valid_mask(n_frames // 2 ** (i // 4), x.shape[-1], x)
            x = layer(x)
        b, c, f, t = x.shape
        x = x.permute(0, 3, 2, 1).reshape(b, t, f * c)  # (B, T', mel * ch) as BYOL-A
        if self.stacked:  # AudioNTT2022: the conv map's values, then the MLP's
            conv = x if self.cfg.stack_scale == 1.0 else x * self.cfg.stack_scale  # (no node in graphs at 1)
            return torch.cat([conv, self.fc(x)], dim=-1)
        return self.fc(x)

    def forward(self, wave: torch.Tensor, n_frames: torch.Tensor) -> torch.Tensor:
        return self.frames_from_mel(self.normalised_logmel(wave), n_frames)

    @staticmethod
    def pool(frames: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, D): the clip pooling of pooling.py (max over time plus mean over time), in torch."""
        return frames.max(dim=1).values + frames.mean(dim=1)
