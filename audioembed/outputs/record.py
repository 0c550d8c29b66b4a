"""OUT/audioembed.json: the model that wrote OUT, claimed before anything is written there, and read back by
resume and `search` (the tree's sources and the stack's manifest live in it too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..errors import AudioEmbedError, IndexFormatError, printable
from ..files import atomic_write_bytes
from .names import EMBEDDINGS, RECORD


class OutputError(ValueError):
    """OUT cannot take this run's outputs as it is (another model's vectors, a damaged record)."""


def read_model_record(out: Path) -> dict | None:
    """The model that wrote OUT, as `Embedder.model_record()` gave it (model, revision, weights_sha256, dim),
    from OUT/audioembed.json; None when OUT has none (written before records were kept, or not a folder).
    Readers (resume, `search`) compare it with theirs through `same_model`. Raises OutputError when damaged."""
    meta = read_meta(Path(out))
    return None if meta is None else meta.get("model")


def same_model(a: dict, b: dict, precision: bool = True) -> bool:
    """Whether two model records name the same vectors: their weight files' sha256 where both recorded them (a
    model folder may be moved or renamed), else the model id and revision; the dimension always; and the precision
    (bfloat16 or float32) unless precision=False (a search's queries: scores across the two still mean the same)."""
    if a.get("dim") != b.get("dim") or (precision and a.get("precision", "f32") != b.get("precision", "f32")):
        return False
    ha, hb = a.get("weights_sha256") or {}, b.get("weights_sha256") or {}
    common = set(ha) & set(hb)
    if common:
        return all(ha[f] == hb[f] for f in common)
    return (a.get("model"), a.get("revision")) == (b.get("model"), b.get("revision"))


def describe_model(record: dict) -> str:
    """A model record in a few words: `name@revision (weights 1a2b3c4d5e6f, 512-d)`."""
    name = printable(str(record.get("model"))) + (f"@{printable(str(record['revision']))}" if record.get("revision") else "")
    digests = sorted((record.get("weights_sha256") or {}).values())
    precision = f", {printable(str(record['precision']))}" if record.get("precision", "f32") != "f32" else ""
    return f"{name} ({'weights ' + str(digests[0])[:12] + ', ' if digests else ''}{record.get('dim')}-d{precision})"


def claim(out: Path, record: dict, overwrite: bool) -> None:
    """Record this run's model in OUT before anything is written there. OUT written by another model is
    refused (its vectors would mix with ours silently), or with overwrite taken over: its stack is stale."""
    meta = read_meta(out) or {}
    old = meta.get("model")
    if old is not None and not same_model(old, record):
        if not overwrite:
            raise OutputError(
                f"{out}: written by the model {describe_model(old)}, but this run uses {describe_model(record)}; "
                "choose another output folder, or add --overwrite to recompute its outputs with this model"
            )
        meta.pop("stack", None)  # the old model's embeddings.npy no longer belongs to OUT's record
    if old is None and (out / EMBEDDINGS).exists():
        meta["stack"] = {"state": "unrecorded"}  # written before records were kept: read and resumed as then
    if meta.get("model") != record:
        meta["model"] = record
        write_meta(out, meta)


def read_meta(out: Path) -> dict | None:
    """OUT/audioembed.json as a dict; None when there is none; OutputError when it is damaged."""
    try:
        data = (out / RECORD).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise OutputError(f"{out / RECORD}: cannot read it ({exc.strerror or exc})") from exc
    try:
        meta = json.loads(data)
        if not isinstance(meta, dict) or not isinstance(meta.get("model", {}), dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise OutputError(f"{out / RECORD}: damaged ({exc}); delete it and run again with --overwrite") from exc
    return meta


def write_meta(out: Path, meta: dict) -> None:
    atomic_write_bytes(out / RECORD, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())


def checked(data: Any, where: Path) -> dict:
    """A model record as an index takes it: an object whose weights_sha256, if any, is an object."""
    if not isinstance(data, dict) or not isinstance(data.get("weights_sha256", {}), dict):
        raise IndexFormatError(f"{where}: not a model record (expected a JSON object with model, revision, "
                               "weights_sha256 and dim)")
    return data


def index_record(path: Path) -> Optional[dict]:
    """The record `audioembed embed` keeps in OUT/audioembed.json, for an index (tree or stack), or None when an
    older audioembed wrote OUT without it."""
    try:
        record = read_model_record(path)
    except (AudioEmbedError, ValueError) as exc:  # OutputError: a damaged record
        raise IndexFormatError(f"{path / RECORD}: unreadable model record ({exc}); write the index again") from None
    return None if record is None else checked(record, path / RECORD)
