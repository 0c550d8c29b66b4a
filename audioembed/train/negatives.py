"""Adversarial negatives: the same content at other positions on the frequency or time axis.

A CNN that pools over its feature map can map such a copy almost onto the original; training
pushes their embeddings apart, so the encoder has to keep track of where a pattern sits.
Every perturbation is guaranteed to move content: permutations are never the identity, shifts
are never zero.

Each perturbation is an index per item along one axis (plus, for shifts, a mask of the bands that
moved in from outside, filled with the item's minimum: silence). A batch is perturbed with one
gather per axis, whatever mix of strategies its items drew. A pitch shift moves the mel axis by a
musical interval, which is not a whole number of mel bands: its index is fractional, and the bands
are read by linear interpolation (a second gather and a blend).
"""

from __future__ import annotations

import torch

from .. import mel
from ..config import ModelConfig
from .settings import STRATEGIES



def _non_identity_perm(n: int, gen: torch.Generator) -> torch.Tensor:
    """A random permutation of n >= 2 items that is not the identity (a derangement is not needed)."""
    perm = torch.randperm(n, generator=gen)
    if bool((perm == torch.arange(n)).all()):
        perm = perm.roll(1)
    return perm


def _segment_index(length: int, segments: int, gen: torch.Generator) -> torch.Tensor:
    """Index along an axis that shuffles `segments` equal-ish pieces into a non-identity order."""
    bounds = torch.linspace(0, length, segments + 1).round().long()
    pieces = [torch.arange(int(bounds[i]), int(bounds[i + 1])) for i in range(segments)]
    return torch.cat([pieces[int(i)] for i in _non_identity_perm(segments, gen)])


def _roll_index(length: int, gen: torch.Generator) -> torch.Tensor:
    """Cyclic shift by a quarter to three quarters of the axis (never a small, near-identity shift)."""
    lo, hi = max(1, length // 4), max(1, 3 * length // 4)
    shift = int(torch.randint(lo, hi + 1, (), generator=gen))
    return (torch.arange(length) + shift) % length


def _shift_index(length: int, bands: tuple, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the axis up or down by bands[0]..bands[1] positions (no wrap): index and fill mask."""
    lo, hi = max(1, int(bands[0])), max(1, min(int(bands[1]), length - 1))
    shift = int(torch.randint(lo, max(lo, hi) + 1, (), generator=gen))
    if bool(torch.rand((), generator=gen) < 0.5):
        shift = -shift
    src = torch.arange(length) - shift  # output band k shows input band k - shift (up when shift > 0)
    return src.clamp(0, length - 1), (src < 0) | (src >= length)


def _pitch_index(n_mels: int, semitones: tuple, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractional mel-band index that shows the spectrum moved up or down by semitones[0]..[1]
    semitones (never 0), and the mask of bands that moved in from outside the mel range."""
    lo, hi = max(1, int(semitones[0])), max(1, int(semitones[1]))
    k = int(torch.randint(lo, max(lo, hi) + 1, (), generator=gen))
    if bool(torch.rand((), generator=gen) < 0.5):
        k = -k
    points = mel.mel_points(ModelConfig(n_mels=n_mels))  # training uses the frontend's default numbers
    centres = mel.mel_to_hz(points[1:-1])
    # output band b shows what the input had at centre(b) / 2^(k/12): content moves up when k > 0
    src = torch.from_numpy((mel.hz_to_mel(centres * 2.0 ** (-k / 12)) - points[1]) / (points[1] - points[0]))
    return src.float(), (src < 0) | (src > n_mels - 1)


def _index(strategy: str, f: int, t: int, segments: int, shift: tuple, gen: torch.Generator, semitones: tuple = (1, 6)):
    """(axis, index, fill mask or None) of one perturbation of an (f, t) item; a pitch shift's index is fractional."""
    if strategy == "freq_flip":
        return 0, torch.arange(f - 1, -1, -1), None
    if strategy == "time_flip":
        return 1, torch.arange(t - 1, -1, -1), None
    if strategy == "freq_roll":
        return 0, _roll_index(f, gen), None
    if strategy == "freq_shuffle":
        return 0, _segment_index(f, min(segments, f), gen), None
    if strategy == "time_shuffle":
        return 1, _segment_index(t, min(segments, t), gen), None
    if strategy == "freq_shift":
        return (0, *_shift_index(f, shift, gen))
    if strategy == "pitch_shift":
        return (0, *_pitch_index(f, semitones, gen))
    raise ValueError(f"unknown negative strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")


def perturb_one(x: torch.Tensor, strategy: str, segments: int, gen: torch.Generator, shift: tuple = (2, 12),
                semitones: tuple = (1, 6)) -> torch.Tensor:
    """x (n_mels, T) -> the same values with positions moved by `strategy`."""
    return perturb_with(x[None], [strategy], segments, gen, shift, semitones)[0]


def perturb_with(x: torch.Tensor, strategies: list, segments: int, gen: torch.Generator, shift: tuple = (2, 12),
                 semitones: tuple = (1, 6)) -> torch.Tensor:
    """(B, n_mels, T) -> item b perturbed by strategies[b]: one gather per axis for the batch
    (two on the frequency axis and a blend when an item's index is fractional)."""
    b, f, t = x.shape
    fpos = torch.arange(f, dtype=torch.float32).repeat(b, 1)
    tidx = torch.arange(t).repeat(b, 1)
    fill = torch.zeros(b, f, dtype=torch.bool)
    for k, strategy in enumerate(strategies):
        axis, index, mask = _index(strategy, f, t, segments, shift, gen, semitones)
        if axis == 0:
            fpos[k] = index.float()
        else:
            tidx[k] = index
        if mask is not None:
            fill[k] = mask
    dev = x.device
    fpos = fpos.clamp(0, f - 1)
    lo = fpos.floor().long()
    frac = fpos - lo
    out = x.gather(1, lo.to(dev)[:, :, None].expand(b, f, t))
    if bool((frac > 0).any()):
        hi = (lo + 1).clamp(max=f - 1)
        w = frac.to(dev, x.dtype)[:, :, None]
        out = out * (1 - w) + x.gather(1, hi.to(dev)[:, :, None].expand(b, f, t)) * w
    out = out.gather(2, tidx.to(dev)[:, None, :].expand(b, f, t))
    if bool(fill.any()):
        floor = x.amin(dim=(1, 2), keepdim=True).expand(b, f, t)
        out = torch.where(fill.to(dev)[:, :, None].expand(b, f, t), floor, out)
    return out


def perturb(x: torch.Tensor, strategies: tuple, segments: int, gen: torch.Generator, shift: tuple = (2, 12),
            semitones: tuple = (1, 6)) -> torch.Tensor:
    """(B, n_mels, T) -> one negative per item, each with a strategy drawn uniformly from `strategies`."""
    pick = torch.randint(len(strategies), (x.shape[0],), generator=gen)
    return perturb_with(x, [strategies[int(k)] for k in pick], segments, gen, shift, semitones)


def candidates(x: torch.Tensor, strategies: tuple, segments: int, gen: torch.Generator, k: int, shift: tuple = (2, 12),
               semitones: tuple = (1, 6)) -> torch.Tensor:
    """(B, n_mels, T) -> (k, B, n_mels, T): k independent perturbations of every item."""
    return torch.stack([perturb(x, strategies, segments, gen, shift, semitones) for _ in range(k)])
