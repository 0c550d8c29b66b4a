"""ModelConfig: every number the frontend and encoder need, read from a model's config.json."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

from .errors import ModelError


MAX_N_FFT = 8192  # its DFT basis alone is n_fft x n_fft floats: 268 MB here
MAX_PARAMETERS = 200_000_000  # 800 MB of float32 weights; the default model has 0.6 M


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A model is data: the code reads these values and never repeats them."""

    name: str = "audioembed"
    # Log-mel frontend (BYOL-A's settings).
    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 60.0
    f_max: float = 7800.0
    log_eps: float = 1.1920928955078125e-07  # torch.finfo(torch.float32).eps, as BYOL-A
    # Dataset statistics of the log-mel values (pre-normalisation).
    norm_mean: float = 0.0
    norm_std: float = 1.0
    # The CNN: n_blocks x (conv3x3, BN, max-pool, ReLU), then a per-frame MLP (hidden -> output, ReLU after each).
    channels: int = 64
    n_blocks: int = 3
    dim: int = 512  # the embedding size: what every vector, frame and index holds
    # The MLP's hidden width; None: the MLP's output width (BYOL-A's AudioNTT2020, where both are dim).
    mlp_hidden: int | None = None
    # What a frame holds: "mlp", the MLP output alone (AudioNTT2020; folders without the key), or "stacked", the
    # last conv block's map flattened per frame (channels x bands) beside the MLP output, as BYOL-A v2's
    # AudioNTT2022 does; the MLP then outputs dim minus the conv part (docs/experiments/readout.md).
    readout: str = "mlp"
    # A stacked frame's conv half is multiplied by this. The conv map's values are several times the MLP's, so in raw
    # cosine (search, clustering) the conv half drowns the other; a linear probe standardises and is blind to it.
    # scripts/readout_folder.py --stack-scale-from sets it to balance the halves' norms on unlabelled audio.
    stack_scale: float = 1.0
    # sha256 of the weight files, recorded at export and checked at load.
    sha256: dict[str, str] = dataclasses.field(default_factory=dict)
    # How the model was trained (settings, data summary, history): carried in memory while a folder is written, then
    # saved to training.json (record.py), never to config.json. Folders before v0.3.1 hold it here; they still load.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    # The named views, listed here once. FRONTEND: the keys that decide the log-mel an encoder sees (a log-mel cache,
    # or weights started from, must match them). ARCHITECTURE: the CNN's shape beside n_mels (which models share one).
    FRONTEND: ClassVar[tuple[str, ...]] = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max",
                                           "log_eps")
    ARCHITECTURE: ClassVar[tuple[str, ...]] = ("channels", "n_blocks", "dim", "mlp_hidden", "readout")

    def __post_init__(self) -> None:
        """Reject wrong types and ranges here, with the key's name, not later deep inside numpy or torch."""
        # Upper bounds far above any sensible model, low enough that nothing absurd is ever allocated.
        _check_int("n_fft", self.n_fft, 2, MAX_N_FFT)  # before the keys bounded by it
        ints = {"sample_rate": (1000, 192_000), "win_length": (1, self.n_fft), "hop_length": (1, self.n_fft),
                "n_mels": (1, 512), "channels": (1, 1024), "dim": (1, 8192),
                # n_mels must be divisible by 2**n_blocks (checked in from_dict); windows.py derives its context.
                "n_blocks": (1, 5)}
        for key, (low, high) in ints.items():
            _check_int(key, getattr(self, key), low, high)
        if self.n_parameters > MAX_PARAMETERS:
            raise ModelError(
                f"config.json: channels={self.channels}, n_mels={self.n_mels}, dim={self.dim} make a model of "
                f"{self.n_parameters:,} parameters, more than the {MAX_PARAMETERS:,} audioembed loads"
            )
        for key in ("f_min", "f_max", "log_eps", "norm_mean", "norm_std"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ModelError(f"config.json: {key}={value!r} must be a finite number")
        if self.win_length > self.n_fft:
            raise ModelError(f"config.json: win_length={self.win_length} must not exceed n_fft={self.n_fft}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ModelError(
                f"config.json: need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                f"f_max={self.f_max}, sample_rate={self.sample_rate}"
            )
        if self.log_eps <= 0 or self.norm_std <= 0:
            raise ModelError(f"config.json: log_eps={self.log_eps} and norm_std={self.norm_std} must be > 0")
        if self.readout not in READOUTS:
            raise ModelError(f"config.json: readout={self.readout!r} must be one of {', '.join(READOUTS)}")
        if self.mlp_hidden is not None:
            _check_int("mlp_hidden", self.mlp_hidden, 1, 16384)
        scale = self.stack_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 1e-3 <= scale <= 1e3:
            raise ModelError(f"config.json: stack_scale={scale!r} must be a number from 0.001 to 1000")
        if scale != 1.0 and self.readout != "stacked":
            raise ModelError(f"config.json: stack_scale={scale!r} scales a stacked frame's conv half; readout is {self.readout!r}")
        if self.mlp_out < 1:
            raise ModelError(
                f"config.json: readout 'stacked' needs dim > the conv map's {self.conv_dim} values per frame "
                f"(channels x n_mels / 2**n_blocks), got dim={self.dim}"
            )
        if not isinstance(self.name, str):
            raise ModelError(f"config.json: name={self.name!r} must be a string")
        if not isinstance(self.sha256, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in self.sha256.items()
        ):
            raise ModelError(f"config.json: sha256 must map file names to 64 hex digits, got {self.sha256!r}"[:300])
        if not isinstance(self.extra, dict):
            raise ModelError(f"config.json: extra must be a JSON object, got {type(self.extra).__name__}")

    @property
    def conv_dim(self) -> int:
        """Values per frame of the last conv block's map, flattened (channels x remaining mel bands)."""
        return self.channels * max(1, self.n_mels // 2**self.n_blocks)

    @property
    def mlp_out(self) -> int:
        """The MLP's output width: dim, less the conv part when the readout stacks it beside."""
        return self.dim - self.conv_dim if self.readout == "stacked" else self.dim

    @property
    def hidden(self) -> int:
        return self.mlp_hidden if self.mlp_hidden is not None else self.mlp_out

    @property
    def n_parameters(self) -> int:
        """The encoder's parameter count (convs, BatchNorms, the two linear layers), known before it is built."""
        c, n = self.channels, self.n_blocks
        convs = (9 + 1) * c + (n - 1) * (9 * c + 1) * c + n * 2 * c
        return convs + (self.conv_dim + 1) * self.hidden + (self.hidden + 1) * max(self.mlp_out, 0)

    @property
    def time_reduction(self) -> int:
        """Log-mel frames per output frame (each block max-pools time by 2)."""
        return 2**self.n_blocks

    @property
    def frame_seconds(self) -> float:
        return self.time_reduction * self.hop_length / self.sample_rate

    def frontend(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FRONTEND}

    def architecture(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.ARCHITECTURE}

    def numbers(self) -> dict[str, Any]:
        """What the model computes with (config.json less its name and weight hashes): equal numbers, equal model
        up to its weights."""
        return {k: v for k, v in self.to_dict().items() if k not in ("name", "sha256", "extra")}

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        # Keys at their AudioNTT2020 defaults are left out, so folders written before them keep their bytes.
        for key, default in (("mlp_hidden", None), ("readout", "mlp"), ("stack_scale", 1.0), ("extra", {})):
            if data[key] == default:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"config.json: unknown keys {unknown}; upgrade audioembed?")
        cfg = cls(**data)  # __post_init__ checks types and ranges
        if cfg.n_mels % cfg.time_reduction:
            raise ModelError(f"config.json: n_mels={cfg.n_mels} must be divisible by {cfg.time_reduction}")
        return cfg

    def save(self, path: str | Path) -> None:
        """config.json: the inference numbers and weight hashes only (the training record goes to training.json)."""
        data = self.to_dict()
        data.pop("extra", None)
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: not a readable config.json ({exc})") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path}: config.json must hold a JSON object")
        try:
            return cls.from_dict(data)
        except ModelError as exc:
            raise ModelError(f"{path}: {str(exc).replace('config.json: ', '', 1)}") from exc


READOUTS = ("mlp", "stacked")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _check_int(key: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ModelError(f"config.json: {key}={value!r} must be an integer {bound}")
