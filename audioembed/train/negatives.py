"""Adversarial negatives: the same content at other positions on the frequency or time axis.

A CNN that pools over its feature map can map such a copy almost onto the original; training
pushes their embeddings apart, so the encoder has to keep track of where a pattern sits.
Every perturbation is guaranteed to move content: permutations are never the identity.
"""

from __future__ import annotations

import torch

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


def perturb_one(x: torch.Tensor, strategy: str, segments: int, gen: torch.Generator) -> torch.Tensor:
    """x (n_mels, T) -> the same values with positions moved by `strategy`."""
    f, t = x.shape
    if strategy == "freq_flip":
        return x.flip(0)
    if strategy == "time_flip":
        return x.flip(1)
    if strategy == "freq_roll":
        return x[_roll_index(f, gen).to(x.device)]
    if strategy == "freq_shuffle":
        return x[_segment_index(f, min(segments, f), gen).to(x.device)]
    if strategy == "time_shuffle":
        return x[:, _segment_index(t, min(segments, t), gen).to(x.device)]
    raise ValueError(f"unknown negative strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")


def perturb(x: torch.Tensor, strategies: tuple, segments: int, gen: torch.Generator) -> torch.Tensor:
    """(B, n_mels, T) -> one negative per item, each with a strategy drawn uniformly from `strategies`."""
    pick = torch.randint(len(strategies), (x.shape[0],), generator=gen)
    return torch.stack([perturb_one(item, strategies[int(k)], segments, gen) for item, k in zip(x, pick)])
