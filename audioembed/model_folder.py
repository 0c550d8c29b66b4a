"""The model folder, the artifact everything revolves around: its file names, its config.json, the sha256
of its weights, and writing it. Where a folder comes from is hub.py's business; this module only reads
and writes one that is on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from pathlib import Path
from typing import Callable, Iterable

from .config import ModelConfig
from .errors import IntegrityError, ModelError, ModelNotFoundError

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
ONNX = "model.onnx"
CARD = "README.md"
BACKEND_FILES = {"torch": SAFETENSORS, "onnx": ONNX, "openvino": ONNX}  # the weights each backend reads
WEIGHT_FILES = (SAFETENSORS, ONNX)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_config(folder: Path) -> ModelConfig:
    try:
        return ModelConfig.load(Path(folder) / CONFIG)
    except ModelError:
        raise
    except Exception as exc:  # a malformed value in an otherwise valid JSON file
        raise ModelError(f"{Path(folder) / CONFIG}: invalid model config ({exc})") from exc


def has_weights(folder: Path, weight_file: str) -> bool:
    return (folder / CONFIG).is_file() and (folder / weight_file).is_file()


def check_local(folder: Path, weight_file: str, name: str) -> None:
    """A folder the user named: it must hold config.json and a regular weight file for the chosen backend."""
    if not (folder / CONFIG).is_file():
        raise ModelNotFoundError(f"{name}: not a model folder (it has no {CONFIG})")
    try:
        mode = os.stat(folder / weight_file).st_mode
    except OSError:
        raise ModelNotFoundError(f"{name}: has no {weight_file}; choose the other backend or re-export the model") from None
    if not stat.S_ISREG(mode):
        raise ModelError(f"{name}: {weight_file} is not a regular file; replace it with the model's weight file")


def verify(
    folder: Path, cfg: ModelConfig, files: Iterable[str], required: bool = False,
    discard: Callable[[Path], bool] | None = None, source: str = "local",
) -> None:
    """Raise IntegrityError when a file's sha256 differs from the one recorded in config.json.

    required: downloaded and bundled weights must have a digest; a local folder is the user's own.
    discard: removes a mismatching file (from the hub cache: one bad download must not poison it for good).
    source: where the folder came from ("local", "hub", "cache", "bundled"), for the advice on a mismatch.
    """
    for name in files:
        expected = cfg.sha256.get(name)
        if expected is None:
            if required:
                raise IntegrityError(
                    f"{folder / name}: no sha256 recorded for it in {CONFIG}, so a corrupt or altered download "
                    "cannot be told apart; ask the model's publisher to re-export it with audioembed"
                )
            continue
        actual = sha256(folder / name)
        if actual != expected:
            mismatch = f"{folder / name}: sha256 {actual[:16]}… does not match {expected[:16]}… recorded in {CONFIG}"
            if source == "local":  # the user's own folder: nothing to download, its files and config disagree
                raise IntegrityError(
                    f"{mismatch}; this folder's files do not match its {CONFIG}: restore the file, or re-export "
                    f"the model so that {CONFIG} records its weights"
                )
            if source == "bundled":
                advice = "reinstall audioembed"
            else:
                advice = "delete it (or the hub cache entry) and download again"
                if discard is not None and discard(folder / name):
                    advice = "it was removed from the cache; run again to download it anew"
            raise IntegrityError(f"{mismatch}; the file is corrupt or was altered: {advice}")


def write(
    out: Path, cfg: ModelConfig, weights: Iterable[str], card_text: str | None = None, history: list[dict] | None = None
) -> ModelConfig:
    """Finish a folder whose weight files are written: record their sha256 in config.json, then write the card.

    card_text: the card's Markdown; by default card.body() from the config and the training history.
    """
    from . import card, record

    out = Path(out)
    cfg = dataclasses.replace(cfg, sha256={name: sha256(out / name) for name in weights})
    if cfg.extra:
        record.save(out, record.TrainingRecord.from_dict(cfg.extra))
    cfg.save(out / CONFIG)
    card.write(out, card_text if card_text is not None else card.body(cfg, history),
               datasets=cfg.extra.get("data", {}).get("datasets", ()))
    return cfg
