"""TrainSettings: every training knob in one place, each written once (default, help); `pretrain` builds its flags
from the fields marked flag=True, and a --config file (JSON or YAML) sets any field."""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import TrainingError

STRATEGIES = ("freq_roll", "freq_shuffle", "time_shuffle", "freq_flip", "time_flip", "freq_shift", "pitch_shift")
# Frequency-axis strategies only: reversing or shuffling the time axis of a stationary texture
# gives the same sound, a false negative that hardest-of-k selection would pick first.
FREQ_STRATEGIES = ("freq_roll", "freq_shuffle", "freq_flip", "freq_shift")
PRECISIONS = ("auto", "bfloat16", "float32")


def setting(default: Any, help: str, flag: bool = False) -> Any:
    """A field with its help written once: for the `pretrain` flag (flag=True), the --config key, docs/training.md."""
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag})


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    # Schedule (steps wins over epochs; an epoch is one crop per cached clip on average).
    steps: int = setting(0, "Training steps (overrides --epochs; 0: use --epochs).", flag=True)
    epochs: float = setting(10.0, "Epochs; one epoch = one crop per cached clip.", flag=True)
    # Half BYOL-A's 64: twice the updates per crop, for small CPU budgets (the release recipe, docs/training.md).
    batch_size: int = setting(32, "Crops per step per process.", flag=True)
    # BYOL-A's 3e-4 is set for batch 256; at batch 32 see docs/experiments/pitch-course.md.
    lr: float = setting(1e-4, "Learning rate of Adam (> 0).", flag=True)
    # Resuming with another value changes the rest of the run only. Studies: docs/experiments/lr-drop-128k.md.
    lr_decay_from: float = setting(1.0, "Fraction of the steps after which lr falls on a half cosine to 0 at the end (1: constant).")
    lr_after: float | None = setting(None, "The lr the half cosine starts from (off: lr): a drop at lr_decay_from, then the decay.")
    weight_decay: float = setting(0.0, "Adam's weight decay.")
    ema: float = setting(0.99, "Decay of the target network's moving average (BYOL-A).")
    seed: int = setting(42, "Random seed of the initial weights, crops, views and negatives.", flag=True)
    # Model (the encoder config's numbers; frontend numbers stay at ModelConfig's defaults).
    dim: int = setting(512, "Embedding size.")
    channels: int = setting(64, "Channels of the conv blocks.")
    # The encoder's other numbers (ModelConfig's fields): AudioNTT2020 by default; BYOL-A v2's AudioNTT2022 is
    # n_blocks 2, mlp_hidden 2048, dim 2048, readout "stacked" (scripts/configs/audiontt2022.json).
    n_blocks: int = setting(3, "Conv blocks of the encoder.")
    mlp_hidden: int | None = setting(None, "Hidden units of the encoder's MLP (off: its output width).")
    readout: str = setting("mlp", "mlp, or stacked (the last conv map beside the MLP's output).")
    proj_hidden: int = setting(4096, "Hidden units of the projector and predictor (not exported).")
    proj_dim: int = setting(256, "Output size of the projector and predictor.")
    # BYOL-A views: 0.95 s crops (96 log-mel frames), mixup, random resize crop, linear fader.
    crop_frames: int = setting(96, "Log-mel frames per crop (96: 0.95 s).")
    mixup_ratio: float = setting(0.4, "Largest weight of the past clip mixed in (log-mixup-exp).")
    mixup_bank: int = setting(2048, "Past crops kept to mix in.")
    rrc_virtual_scale: tuple[float, float] = setting((1.0, 1.5), "Random resize crop: the zero canvas's size range, × the input.")
    # BYOL-A's frequency crop teaches invariance to pitch; the negatives' head keeps it
    # (docs/experiments/head-negatives.md).
    rrc_freq_scale: tuple[float, float] = setting((0.6, 1.5), "Random resize crop's frequency scale ([1, 1]: none).")
    # Not adopted (docs/experiments/freq-crop-stop.md); the same random draws either way.
    freq_crop_until: float = setting(1.0, "Fraction of the steps after which the views' frequency crop stops (1: never).")
    rrc_time_scale: tuple[float, float] = setting((0.6, 1.5), "Random resize crop's time scale.")
    fader_gain: float = setting(1.0, "Largest ramp of the linear fader, ± in the log domain.")
    # Adversarial negatives; "none" is exactly BYOL-A. The defaults below are the release's
    # (docs/experiments/choosing-negatives.md).
    negatives: tuple[str, ...] = setting(
        ("pitch_shift",), "'all', 'freq' (the frequency-axis ones), 'none' (plain BYOL-A) or a comma list of freq_roll, "
                          "freq_shuffle, freq_flip, freq_shift, pitch_shift, time_shuffle, time_flip.", flag=True)
    neg_segments: int = setting(4, "Bands or segments the shuffles cut into.")
    neg_lambda: float = setting(1.0, "Weight of the negative hinge.")
    neg_margin: float = setting(0.0, "Cosine below which a negative costs nothing.")
    # "projection": their prediction vs the anchor's target projection; "representation": the clip embeddings;
    # "head": a projector of the negatives' own (docs/experiments/head-negatives.md).
    neg_space: str = setting("head", "projection (BYOL's space), representation (the clip embedding) or head (a projector of their own).")
    # Adds λ·relu(cos(y_neg, y_anchor) − this) on the clip embeddings; not with neg_space "representation".
    # Not adopted (docs/experiments/repr-cap.md).
    neg_repr_margin: float | None = setting(None, "Also cap the clip embeddings' cosine to their negatives at this value (a second hinge).")
    # The online network judges the candidates in eval mode, without gradient.
    neg_candidates: int = setting(4, "Hardest of k: draw k perturbations per crop, keep the one the network finds most similar (1: random).")
    neg_shift: tuple[int, int] = setting((2, 12), "freq_shift's range, in mel bands (no wrap).")
    # Fractional mel bands, interpolated: freq_shift's whole bands are 0.3-2 semitones each.
    neg_semitones: tuple[int, int] = setting((1, 6), "pitch_shift's range, in semitones up or down.")
    # bfloat16 is autocast: weights, EMA target, losses and batch-norm statistics stay float32. Emulated
    # bfloat16 (a CPU without AVX-512 BF16 or AMX) is slower than float32 (docs/experiments/cpu-speed.md).
    precision: str = setting("auto", "auto (bfloat16 where the device has it in hardware, else float32), bfloat16 or float32.")
    balance_folders: bool = setting(False, "Draw every top-level folder of DATA_DIR (e.g. music/ speech/ sfx/) equally often.", flag=True)
    # Bookkeeping.
    log_every: int = setting(20, "Steps per log row.")
    ckpt_every: int = setting(100, "Steps between checkpoints.")
    snapshot_every: int = setting(
        0, "Also export the model every N steps to OUT.snapshots/step-NNNNNN (for choosing a step on dev sets); 0: never.", flag=True)
    workers: int = setting(2, "Processes that decode audio into the log-mel cache.")

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
                                "already puts the hinge: use neg_margin there")
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
        """The settings of a --config file (its RUN_KEYS aside), `overrides` (the flags given) on top."""
        return cls(**{**read_config(path)[0], **overrides})


# Keys a --config file may hold beside the settings: how this invocation runs, not what it trains (never recorded).
RUN_KEYS = {
    "checkpoint": "Checkpoint file (default: OUT.checkpoints/last.pt); this invocation's, not recorded.",
    "init_step": "With --init-from: the step to go on from (a lost run's snapshot step, so steps and the lr schedule "
                 "carry on; default 0); this invocation's, not recorded.",
}


def read_config(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A --config file's settings and run keys: JSON, or YAML (.yaml, .yml). A key that is neither is an error
    naming it and the file: a typo must not train for hours on a default."""
    path = Path(path)
    try:
        text = path.read_text()
        data = _yaml(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{path}: cannot read the config file ({exc})") from exc
    except ValueError as exc:  # json's and yaml's errors alike (see _yaml)
        raise TrainingError(f"{path}: not a {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} file "
                            f"({' '.join(str(exc).split())})") from exc
    if not isinstance(data, dict):
        raise TrainingError(f"{path}: a config file holds one mapping of settings, not {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(TrainSettings)]
    for key in data:
        if key not in known and key not in RUN_KEYS:
            near = difflib.get_close_matches(str(key), [*known, *RUN_KEYS], n=1)
            raise TrainingError(f"{path}: unknown setting {key!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                                + "; the keys are listed in docs/training.md")
    run = {k: data[k] for k in RUN_KEYS if k in data}
    if run.get("checkpoint") is not None and not isinstance(run["checkpoint"], str):
        raise TrainingError(f"{path}: checkpoint must be a file name, not {run['checkpoint']!r}")
    step = run.get("init_step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise TrainingError(f"{path}: init_step must be an integer >= 0, not {step!r}")
    return {k: v for k, v in data.items() if k not in RUN_KEYS}, run


def _yaml(text: str) -> Any:
    """YAML with 1e-4 read as a number (PyYAML's YAML 1.1 reads it as a string), its errors as ValueError."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+|\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789."))
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


def settings_table() -> str:
    """docs/training.md's table of the --config keys, from the fields (tests/test_train.py checks the page has it)."""
    def shown(value: Any) -> str:
        return "off" if value is None else json.dumps(list(value) if isinstance(value, tuple) else value)

    rows = [f"| `{f.name}` | {'`--' + f.name.replace('_', '-') + '`' if f.metadata['flag'] else ''} | "
            f"`{shown(f.default)}` | {f.metadata['help'].replace('|', '/')} |" for f in dataclasses.fields(TrainSettings)]
    rows += [f"| `{k}` | | off | {help} |" for k, help in RUN_KEYS.items()]
    return "\n".join(["| key | flag | default | what it sets |", "|---|---|---|---|", *rows])


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
        raise TrainingError(f"steps must be >= 0 (0: train for epochs), not {s.steps}")
    for name in ("epochs", "lr", "crop_frames", "channels", "dim", "proj_hidden", "proj_dim", "log_every", "ckpt_every", "workers"):
        if not getattr(s, name) > 0:
            raise TrainingError(f"{name} must be > 0, not {getattr(s, name)}")
    for name in ("weight_decay", "neg_lambda", "snapshot_every", "mixup_ratio"):
        if getattr(s, name) < 0:
            raise TrainingError(f"{name} must be >= 0, not {getattr(s, name)}")
    if not 0.0 <= s.ema <= 1.0:
        raise TrainingError(f"ema must be a decay in [0, 1], not {s.ema}")
