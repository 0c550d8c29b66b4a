"""BYOL-A networks and losses: online encoder + projector + predictor, EMA target, negative hinge."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..nn import AudioEncoder


def mlp(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))


class Online(nn.Module):
    """Encoder -> clip embedding (mean + max over time) -> projector -> predictor.

    Views and negatives go through in one forward call (what DDP wants) but in separate
    encoder passes, so the negatives never enter the views' batch-norm statistics.
    """

    def __init__(self, cfg: ModelConfig, proj_hidden: int, proj_dim: int, neg_head: bool = False):
        super().__init__()
        self.encoder = AudioEncoder(cfg)
        self.projector = mlp(cfg.dim, proj_hidden, proj_dim)
        self.predictor = mlp(proj_dim, proj_hidden, proj_dim)
        # neg_space "head": a projector of its own for the negatives, so that the views' projector may
        # learn invariance to a frequency zoom while the representation under both keeps position.
        # Its weights come from a forked RNG: the shared layers start as in a run without it.
        self.neg_head = None
        if neg_head:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(torch.initial_seed() + 1)
                self.neg_head = mlp(cfg.dim, proj_hidden, proj_dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) normalised log-mel -> (B, dim) clip embedding, as at inference."""
        return AudioEncoder.pool(self.encoder.frames_from_mel(x.unsqueeze(1)))

    def forward(self, views: torch.Tensor, negatives: torch.Tensor | None = None, neg_space: str = "projection"):
        """-> (predictions of the views, their clip embeddings, the negatives in neg_space or None,
        the negatives' clip embeddings or None).

        neg_space "projection": the negatives' predictions (compared with the anchors' target
        projections); "representation": their clip embeddings (compared with the anchors' own);
        "head": (the anchors', the negatives') outputs of the negatives' own head, the first half
        of the views being the anchors; one head call, so both share its batch statistics.
        """
        y = self.embed(views)
        p = self.predictor(self.projector(y))
        if negatives is None:
            return p, y, None, None
        # The negatives' dropout draws come from a forked RNG, so a run with negatives sees exactly
        # the random stream of a run without them (the ablation differs only by the negative term).
        with torch.random.fork_rng(devices=[negatives.device] if negatives.is_cuda else []):
            y_neg = self.embed(negatives)
        if neg_space == "head":
            if 2 * len(negatives) != len(views):  # the anchors are read off the views by position
                raise ValueError(f"neg_space 'head' takes one negative per anchor, the anchors being the first half "
                                 f"of the views: got {len(negatives)} negatives for {len(views)} views")
            h = self.neg_head(torch.cat([y[: len(negatives)], y_neg]))
            return p, y, h.chunk(2), y_neg
        return p, y, (y_neg if neg_space == "representation" else self.predictor(self.projector(y_neg))), y_neg


class Target(nn.Module):
    """The EMA copy of the online encoder and projector; never trained by gradients."""

    def __init__(self, online: Online):
        super().__init__()
        self.encoder = copy.deepcopy(online.encoder)
        self.projector = copy.deepcopy(online.projector)
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(AudioEncoder.pool(self.encoder.frames_from_mel(x.unsqueeze(1))))

    @torch.no_grad()
    def update(self, online: Online, decay: float) -> None:
        for mine, theirs in ((self.encoder, online.encoder), (self.projector, online.projector)):
            torch._foreach_lerp_(list(mine.parameters()), [o.detach() for o in theirs.parameters()], 1 - decay)
            for t, o in zip(mine.buffers(), theirs.buffers()):
                t.copy_(o)


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """2 - 2·cos(prediction, target projection), per item."""
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)


def negative_loss(p_neg: torch.Tensor, z_anchor: torch.Tensor, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hinge relu(cos - margin) between a negative and its (detached) anchor in the same space."""
    cos = F.cosine_similarity(p_neg, z_anchor.detach(), dim=-1)
    return F.relu(cos - margin), cos
