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

import functools

import torch

from .. import mel
from ..config import ModelConfig
from .settings import STRATEGIES
from .transfer import to_device


def _non_identity_perm(n: int, gen: torch.Generator) -> tuple[int, ...]:
    """A random permutation of n >= 2 items that is not the identity (a derangement is not needed)."""
    perm = torch.randperm(n, generator=gen).tolist()
    if perm == list(range(n)):
        perm = perm[-1:] + perm[:-1]  # roll by one, as torch.roll(1)
    return tuple(perm)


def _signed(lo: int, hi: int, gen: torch.Generator) -> int:
    """lo..hi, negated with probability 1/2 (two draws, in this order: the amount, then the sign)."""
    amount = int(torch.randint(lo, hi + 1, (), generator=gen))
    return -amount if float(torch.rand((), generator=gen)) < 0.5 else amount


# The draws per item are scalars; the index rows they select are built once per shape and cached, so a
# batch costs a few scalar draws per item and one stack, not tensor arithmetic per item.
@functools.lru_cache(maxsize=4096)  # bounded: with many segments the orders drawn are nearly all distinct
def _segment_row(length: int, segments: int, order: tuple) -> torch.Tensor:
    bounds = torch.linspace(0, length, segments + 1).round().long().tolist()
    return torch.cat([torch.arange(bounds[i], bounds[i + 1]) for i in order]).float()


@functools.lru_cache(maxsize=None)
def _roll_row(length: int, shift: int) -> torch.Tensor:
    return ((torch.arange(length) + shift) % length).float()


@functools.lru_cache(maxsize=None)
def _flip_row(length: int) -> torch.Tensor:
    return torch.arange(length - 1, -1, -1).float()


@functools.lru_cache(maxsize=None)
def _shift_row(length: int, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.arange(length) - shift  # output band k shows input band k - shift (up when shift > 0)
    return src.clamp(0, length - 1).float(), (src < 0) | (src >= length)


@functools.lru_cache(maxsize=None)
def _pitch_row(n_mels: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fractional mel-band index that shows the spectrum moved by k semitones, and the mask of bands
    that moved in from outside the mel range."""
    points = mel.mel_points(ModelConfig(n_mels=n_mels))  # training uses the frontend's default numbers
    centres = mel.mel_to_hz(points[1:-1])
    # output band b shows what the input had at centre(b) / 2^(k/12): content moves up when k > 0
    src = torch.from_numpy((mel.hz_to_mel(centres * 2.0 ** (-k / 12)) - points[1]) / (points[1] - points[0]))
    return src.float(), (src < 0) | (src > n_mels - 1)


def _index(strategy: str, f: int, t: int, segments: int, shift: tuple, gen: torch.Generator, semitones: tuple = (1, 6)):
    """(axis, index, fill mask or None) of one perturbation of an (f, t) item; a pitch shift's index is
    fractional. Permutations are never the identity; rolls move a quarter to three quarters of the axis
    (never a small, near-identity shift); shifts move shift[0]..shift[1] bands up or down (no wrap);
    pitch shifts semitones[0]..[1] semitones (never 0)."""
    if strategy == "freq_flip":
        return 0, _flip_row(f), None
    if strategy == "time_flip":
        return 1, _flip_row(t), None
    if strategy == "freq_roll":
        lo, hi = max(1, f // 4), max(1, 3 * f // 4)
        return 0, _roll_row(f, int(torch.randint(lo, hi + 1, (), generator=gen))), None
    if strategy in ("freq_shuffle", "time_shuffle"):
        length = f if strategy == "freq_shuffle" else t
        n = min(segments, length)
        return int(strategy == "time_shuffle"), _segment_row(length, n, _non_identity_perm(n, gen)), None
    if strategy == "freq_shift":
        lo, hi = max(1, int(shift[0])), max(1, min(int(shift[1]), f - 1))
        return (0, *_shift_row(f, _signed(lo, max(lo, hi), gen)))
    if strategy == "pitch_shift":
        lo, hi = max(1, int(semitones[0])), max(1, int(semitones[1]))
        return (0, *_pitch_row(f, _signed(lo, max(lo, hi), gen)))
    raise ValueError(f"unknown negative strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")


@functools.lru_cache(maxsize=None)
def _identity_rows(f: int, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.arange(f).float(), torch.arange(t).float(), torch.zeros(f, dtype=torch.bool)


def perturb_with(x: torch.Tensor, strategies: list, segments: int, gen: torch.Generator, shift: tuple = (2, 12),
                 semitones: tuple = (1, 6)) -> torch.Tensor:
    """(B, n_mels, T) -> item b perturbed by strategies[b]: one gather per axis for the batch
    (two on the frequency axis and a blend when an item's index is fractional)."""
    b, f, t = x.shape
    keep_f, keep_t, no_fill = _identity_rows(f, t)
    frows, trows, fills = [keep_f] * b, [keep_t] * b, [no_fill] * b
    for k, strategy in enumerate(strategies):
        axis, index, mask = _index(strategy, f, t, segments, shift, gen, semitones)
        if axis == 0:
            frows[k] = index
        else:
            trows[k] = index
        if mask is not None:
            fills[k] = mask
    fpos, tidx, fill = torch.stack(frows), torch.stack(trows).long(), torch.stack(fills)
    dev = x.device
    fpos = fpos.clamp(0, f - 1)
    lo = fpos.floor().long()
    frac = fpos - lo
    out = x.gather(1, to_device(lo, dev)[:, :, None].expand(b, f, t))
    if bool((frac > 0).any()):
        hi = (lo + 1).clamp(max=f - 1)
        w = to_device(frac.to(x.dtype), dev)[:, :, None]
        out = out * (1 - w) + x.gather(1, to_device(hi, dev)[:, :, None].expand(b, f, t)) * w
    out = out.gather(2, to_device(tidx, dev)[:, None, :].expand(b, f, t))
    if bool(fill.any()):
        floor = x.amin(dim=(1, 2), keepdim=True).expand(b, f, t)
        out = torch.where(to_device(fill, dev)[:, :, None].expand(b, f, t), floor, out)
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
