"""TrainSettings: every training knob in one place, from CLI flags or a JSON config file."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from ..errors import TrainingError

STRATEGIES = ("freq_roll", "freq_shuffle", "time_shuffle", "freq_flip", "time_flip", "freq_shift", "pitch_shift")
# Frequency-axis strategies only: reversing or shuffling the time axis of a stationary texture
# gives the same sound, a false negative that hardest-of-k selection would pick first.
FREQ_STRATEGIES = ("freq_roll", "freq_shuffle", "freq_flip", "freq_shift")
PRECISIONS = ("auto", "bfloat16", "float32")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    # Schedule (steps wins over epochs; an epoch is one crop per cached clip on average).
    steps: int = 0
    epochs: float = 10.0
    batch_size: int = 32  # the shipped model's: twice the updates per crop of BYOL-A's 64, for small CPU budgets
    # BYOL-A's 3e-4 is for batch 256; at batch 32 it cost most of the pitch class by 64,000 crops,
    # where 1e-4 kept it and learned family faster (same seed and data; docs/training.md).
    lr: float = 1e-4
    # After this fraction of the steps, the learning rate follows a half cosine from lr down to 0 at
    # the last step (1.0: constant). Resuming with another value changes the rest of the run only.
    lr_decay_from: float = 1.0
    # The learning rate the half cosine starts from (None: lr). A lower value drops the rate at
    # lr_decay_from, then decays it: one run that learns fast, then settles slowly.
    lr_after: float | None = None
    weight_decay: float = 0.0
    ema: float = 0.99  # target network decay (BYOL-A)
    seed: int = 42
    # Model (the encoder config's numbers; frontend numbers stay at ModelConfig's defaults).
    dim: int = 512
    channels: int = 64
    # The encoder's other numbers (ModelConfig's fields): AudioNTT2020 by default; BYOL-A v2's AudioNTT2022 is
    # n_blocks 2, mlp_hidden 2048, dim 2048, readout "stacked" (scripts/configs/audiontt2022.json).
    n_blocks: int = 3
    mlp_hidden: int | None = None
    readout: str = "mlp"
    proj_hidden: int = 4096
    proj_dim: int = 256
    # BYOL-A views: 0.95 s crops (96 log-mel frames), mixup, random resize crop, linear fader.
    crop_frames: int = 96
    mixup_ratio: float = 0.4
    mixup_bank: int = 2048
    rrc_virtual_scale: tuple[float, float] = (1.0, 1.5)
    # BYOL-A's frequency crop (0.6-1.5): zooming and shifting the mel axis between the views teaches
    # invariance to pitch, which costs pitch class in plain BYOL-A; the negatives in a head of their
    # own (below) keep it (+6.3 ± 3.1 points over the ablation, 3 seeds per arm, docs/training.md).
    rrc_freq_scale: tuple[float, float] = (0.6, 1.5)
    # After this fraction of the steps the views' frequency crop stops (the mel axis kept whole; 1.0: never).
    # Same random draws either way. Stopped at 128,000 of 500,000 crops it cost family (docs/training.md): not adopted.
    freq_crop_until: float = 1.0
    rrc_time_scale: tuple[float, float] = (0.6, 1.5)
    fader_gain: float = 1.0
    # Adversarial negatives: "none" gives exactly BYOL-A. Default (the release's): a pitch shift of
    # 1-6 semitones, hardest of 4, pushed to cosine 0 (margin 0) in a head of their own; chosen on
    # short runs, 3 seeds per arm (docs/training.md).
    negatives: tuple[str, ...] = ("pitch_shift",)
    neg_segments: int = 4
    neg_lambda: float = 1.0
    neg_margin: float = 0.0
    # Where negatives are pushed: "projection" (their prediction vs the anchor's target projection,
    # BYOL's space), "representation" (their clip embedding vs the anchor's: what users get), or
    # "head" (both through a projector of the negatives' own, not the views': the views may then teach
    # invariance to a frequency zoom in their projection while the negatives keep position in the
    # representation under it, where the two terms in one projection pull against each other).
    neg_space: str = "head"
    # A cap on the representation itself: also add λ·relu(cos(y_neg, y_anchor) − this) on the clip
    # embeddings (None: off). A head of their own can keep its negatives apart on a feature the
    # representation shrinks step by step; this keeps the representation's cosine to the negative
    # (the hardest pitch shift: the log's `repr`) from rising past the value. Not with neg_space
    # "representation", where the hinge itself is on the clip embeddings. Tried at 0.8 and not adopted:
    # every dev set lost 1-4 points (docs/training.md).
    neg_repr_margin: float | None = None
    # Hardest of k: draw k candidate perturbations per crop and keep the one the online network
    # (eval mode, no gradient) finds most similar to its anchor; 1 = a random draw.
    neg_candidates: int = 4
    neg_shift: tuple[int, int] = (2, 12)  # freq_shift moves the mel axis by this many bands (no wrap)
    # pitch_shift moves the spectrum by this many semitones, up or down (fractional mel bands,
    # interpolated): a musical interval, where freq_shift's whole bands are 0.3-2 semitones each.
    neg_semitones: tuple[int, int] = (1, 6)
    # Arithmetic of the network passes: bfloat16 autocast (weights, EMA target, losses and
    # batch-norm statistics stay float32) or float32. "auto": bfloat16 where the device runs it
    # natively (a GPU with bfloat16; a CPU with AVX-512 BF16 or AMX), float32 elsewhere: on a CPU
    # without them bfloat16 is emulated, a step 7x slower than float32 (measured on an AVX2-only EPYC).
    precision: str = "auto"
    # Sample crops so that every top-level folder of DATA_DIR (e.g. music/ speech/ sfx/) is drawn
    # equally often, whatever its hours; False draws clips uniformly.
    balance_folders: bool = False
    # Bookkeeping.
    log_every: int = 20
    ckpt_every: int = 100
    # Every this many steps, also export the model as it stands to OUT.snapshots/step-NNNNNN (0: never),
    # so a long run's course can be evaluated on the dev sets and a step chosen afterwards.
    snapshot_every: int = 0
    workers: int = 2

    def __post_init__(self):
        """Normalise lists (from JSON) and a negatives string (from the CLI) to tuples, then check the values."""
        negatives = parse_negatives(self.negatives) if isinstance(self.negatives, str) else self.negatives
        object.__setattr__(self, "negatives", tuple(negatives))  # frozen: the one place fields are set
        for name in ("rrc_virtual_scale", "rrc_freq_scale", "rrc_time_scale", "neg_shift", "neg_semitones"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        bad = [s for s in self.negatives if s not in STRATEGIES]
        if bad:
            raise TrainingError(f"unknown negative strategies {bad}: choose from {', '.join(STRATEGIES)} or 'none'")
        if self.neg_space not in ("projection", "representation", "head"):
            raise TrainingError(f"neg_space must be 'projection', 'representation' or 'head', not {self.neg_space!r}")
        if self.neg_repr_margin is not None and self.neg_space == "representation":
            raise TrainingError("neg_repr_margin caps the clip embeddings' cosine, where neg_space 'representation' "
                                "already puts the hinge: use --neg-margin there")
        if not 0.0 <= self.lr_decay_from <= 1.0:
            raise TrainingError(f"lr_decay_from must be a fraction of the run in [0, 1], not {self.lr_decay_from}")
        if not 0.0 <= self.freq_crop_until <= 1.0:
            raise TrainingError(f"freq_crop_until must be a fraction of the run in [0, 1], not {self.freq_crop_until}")
        if self.lr_after is not None and not self.lr_after > 0:
            raise TrainingError(f"lr_after must be a learning rate > 0, not {self.lr_after}")
        if self.batch_size < 2:
            raise TrainingError("batch_size must be >= 2 (batch statistics)")
        if self.neg_segments < 2:
            raise TrainingError("neg_segments must be >= 2")
        if self.neg_candidates < 1:
            raise TrainingError("neg_candidates must be >= 1")
        if len(self.neg_shift) != 2 or not 1 <= self.neg_shift[0] <= self.neg_shift[1]:
            raise TrainingError(f"neg_shift must be (min, max) bands with 1 <= min <= max, not {self.neg_shift}")
        if len(self.neg_semitones) != 2 or not 1 <= self.neg_semitones[0] <= self.neg_semitones[1]:
            raise TrainingError(f"neg_semitones must be (min, max) with 1 <= min <= max, not {self.neg_semitones}")
        if self.precision not in PRECISIONS:
            raise TrainingError(f"precision must be 'auto', 'bfloat16' or 'float32', not {self.precision!r}")
        _check_numbers(self)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainSettings":
        data = json.loads(Path(path).read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"{path}: unknown settings {unknown}")
        return cls(**{**data, **overrides})


def parse_negatives(text: str) -> tuple[str, ...]:
    """'none' -> (); 'all' -> every strategy; 'freq' -> the frequency-axis ones; else a comma list."""
    text = text.strip()
    if text in ("none", ""):
        return ()
    if text == "all":
        return STRATEGIES
    if text == "freq":
        return FREQ_STRATEGIES
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _check_numbers(s: "TrainSettings") -> None:
    """Numbers a run can train with: of their type, finite, in range (a negative --steps or a NaN --lr once
    trained nothing, or crashed, and exported anyway)."""
    for f in dataclasses.fields(s):
        value, kind = getattr(s, f.name), type(f.default)
        if f.name in ("lr_after", "neg_repr_margin"):  # optional numbers: None means off
            kind = type(None) if value is None else float
        if kind not in (int, float):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
            raise TrainingError(f"{f.name} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
        if not math.isfinite(value):
            raise TrainingError(f"{f.name} must be a finite number, not {value}")
    if s.steps < 0:
        raise TrainingError(f"steps must be >= 0 (0: train for --epochs), not {s.steps}")
    for name in ("epochs", "lr", "crop_frames", "channels", "dim", "proj_hidden", "proj_dim", "log_every", "ckpt_every", "workers"):
        if not getattr(s, name) > 0:
            raise TrainingError(f"{name} must be > 0, not {getattr(s, name)}")
    for name in ("weight_decay", "neg_lambda", "snapshot_every", "mixup_ratio"):
        if getattr(s, name) < 0:
            raise TrainingError(f"{name} must be >= 0, not {getattr(s, name)}")
    if not 0.0 <= s.ema <= 1.0:
        raise TrainingError(f"ema must be a decay in [0, 1], not {s.ema}")
