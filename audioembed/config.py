"""ModelConfig: every number the frontend and encoder need, read from a model's config.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .errors import ModelError


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
    # AudioNTT2020-style CNN.
    channels: int = 64
    n_blocks: int = 3
    dim: int = 512
    # sha256 of the weight files, recorded at export and checked at load.
    sha256: dict[str, str] = dataclasses.field(default_factory=dict)
    # Free-form provenance (training settings, data summary); not used by inference.
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def time_reduction(self) -> int:
        """Log-mel frames per output frame (each block max-pools time by 2)."""
        return 2**self.n_blocks

    @property
    def frame_seconds(self) -> float:
        return self.time_reduction * self.hop_length / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"config.json: unknown keys {unknown}; upgrade audioembed?")
        cfg = cls(**data)
        if cfg.n_mels % cfg.time_reduction:
            raise ModelError(f"config.json: n_mels={cfg.n_mels} must be divisible by {cfg.time_reduction}")
        return cfg

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: not a readable config.json ({exc})") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path}: config.json must hold a JSON object")
        return cls.from_dict(data)
