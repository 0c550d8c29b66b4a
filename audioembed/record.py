"""training.json: how a model was trained (settings, data summary, precision, init-from, history).

Inference never reads it: config.json holds what inference needs and nothing else. The card, `pretrain
--init-from`, scripts/ship_model.py and scripts/make_figures.py read a model's record through `load`, which
also reads folders written before training.json existed (their config.json's `extra`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ModelError

RECORD = "training.json"


@dataclasses.dataclass(frozen=True)
class TrainingRecord:
    """`training`: settings, steps, crops, time, precision, init_from, final metrics, history; `data`: the corpus
    summary (clips, hours by folder, datasets); `other`: any further keys, kept as they were."""

    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    other: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def settings(self) -> dict[str, Any]:
        return self.training.get("settings", {})

    @property
    def history(self) -> list[dict]:
        return self.training.get("history", [])

    @property
    def final(self) -> dict[str, Any]:
        return self.training.get("final", {})

    def __bool__(self) -> bool:
        return bool(self.training or self.data or self.other)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.other)
        if self.training:
            out["training"] = self.training
        if self.data:
            out["data"] = self.data
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = RECORD) -> "TrainingRecord":
        if not isinstance(data, dict):
            raise ModelError(f"{source}: must hold a JSON object")
        rest = {k: v for k, v in data.items() if k not in ("training", "data")}
        training, summary = data.get("training", {}), data.get("data", {})
        if not isinstance(training, dict) or not isinstance(summary, dict):
            raise ModelError(f"{source}: 'training' and 'data' must be JSON objects")
        return cls(training, summary, rest)


def load(folder: str | Path) -> TrainingRecord:
    """A model folder's record: training.json, else config.json's `extra` (folders before v0.3.1), else empty."""
    folder = Path(folder)
    for name, key in ((RECORD, None), ("config.json", "extra")):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: not readable JSON ({exc})") from exc
        if key is not None:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        return TrainingRecord.from_dict(data, str(path))
    return TrainingRecord()


def save(folder: str | Path, record: TrainingRecord) -> None:
    """Write training.json beside config.json, atomically (a temp file in the same folder, then a rename)."""
    folder = Path(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{RECORD}.", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # what a plain open() would give, as the other files of the folder
        os.replace(tmp, folder / RECORD)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
