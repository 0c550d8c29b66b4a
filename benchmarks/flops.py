"""Analytic FLOP counts per second of audio, for our model and the peers.

Counting rule: 2 FLOPs per multiply-add of every matrix product the model really computes
(the STFT as our frontend does it: a strided conv over only the DFT bins a mel filter uses; the
mel matmul; each convolution; each linear layer). Elementwise work (power, log, normalisation,
masks, BatchNorm, ReLU, pooling) is left out: it is memory-bound and under 2 % of the total.
"""

from __future__ import annotations

from audioembed import mel
from audioembed.config import ModelConfig


def audioembed_flops(cfg: ModelConfig, seconds: float = 10.0) -> dict[str, float]:
    """FLOPs of one pass over a `seconds` clip (centre-padded), split by stage."""
    n_mel_frames = int(seconds * cfg.sample_rate) // cfg.hop_length + 1
    k = mel.used_bins(cfg)
    out = {
        "stft": 2.0 * n_mel_frames * (2 * k) * cfg.n_fft,
        "mel": 2.0 * n_mel_frames * cfg.n_mels * k,
    }
    f, t, c_in = cfg.n_mels, n_mel_frames, 1
    conv = 0.0
    for _ in range(cfg.n_blocks):
        conv += 2.0 * f * t * cfg.channels * c_in * 9
        f, t, c_in = f // 2, t // 2, cfg.channels
    out["conv"] = conv
    flat = cfg.channels * (cfg.n_mels // cfg.time_reduction)
    out["mlp"] = 2.0 * t * (flat * cfg.dim + cfg.dim * cfg.dim)
    out["total"] = sum(out.values())
    return out


def audioembed_flops_per_second(cfg: ModelConfig) -> float:
    return audioembed_flops(cfg, 10.0)["total"] / 10.0


def cnn14_flops(seconds: float = 10.0, sr: int = 32000, hop: int = 320, n_fft: int = 1024, n_mels: int = 64) -> float:
    """CNN14 as panns_inference builds it: full-band conv STFT, mel matmul, 6 double-conv blocks, fc1."""
    t = int(seconds * sr) // hop + 1
    bins = n_fft // 2 + 1
    total = 2.0 * t * 2 * bins * n_fft + 2.0 * t * bins * n_mels
    f, c_in = n_mels, 1
    for i, c in enumerate((64, 128, 256, 512, 1024, 2048)):
        total += 2.0 * f * t * 9 * (c_in * c + c * c)
        if i < 5:
            f, t = f // 2, t // 2
        c_in = c
    return total + 2.0 * (2048 * 2048 + 2048 * 527)


if __name__ == "__main__":  # the figures docs/benchmarks.md quotes: python benchmarks/flops.py
    parts = audioembed_flops(ModelConfig())
    print("default model, per 10 s clip: " + ", ".join(f"{k} {v / 1e9:.2f} G" for k, v in parts.items()))
    print(f"per audio second: {parts['total'] / 10 / 1e6:.0f} MFLOP; CNN14 per 10 s: {cnn14_flops() / 1e9:.1f} G "
          f"({cnn14_flops() / parts['total']:.0f}x)")
