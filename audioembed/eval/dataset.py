"""Labelled datasets: a folder per class (DATA/<label>/*.wav) or a CSV manifest (path,label[,split|fold])."""

from __future__ import annotations

import collections
import csv
import dataclasses
import hashlib
from pathlib import Path

from ..errors import AudioEmbedError
from ..files import find_audio, is_audio

MANIFEST_NAME = "manifest.csv"
SPLIT_NAMES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}


class DatasetError(AudioEmbedError, ValueError):
    """A dataset cannot be evaluated as given (layout, manifest or labels)."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Clips with labels, and how to split them: a fixed split, given folds, or neither (k-fold)."""

    name: str
    source: Path
    paths: list[Path]
    labels: list[str]
    split: list[str] | None = None  # "train" / "valid" / "test" per clip
    fold: list[str] | None = None  # leave-one-fold-out

    @property
    def classes(self) -> dict[str, int]:
        return dict(sorted(collections.Counter(self.labels).items()))

    @property
    def protocol(self) -> str:
        return "split" if self.split is not None else "fold" if self.fold is not None else "kfold"


def fingerprint(ds: Dataset) -> str:
    """sha256 over every clip's bytes, label and split or fold, in the dataset's order. Two reports scored the same
    clips only where their fingerprints agree: a dev set rebuilt on another machine (another synthesizer or decoder
    build) can keep its names and counts and still differ in its samples."""
    h = hashlib.sha256()
    for i, path in enumerate(ds.paths):
        assigned = f"{ds.split[i] if ds.split else ''}\0{ds.fold[i] if ds.fold else ''}"
        try:
            with open(path, "rb") as f:
                content = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as e:  # evaluate reports the clip itself; here it only has to change the fingerprint
            content = f"unreadable: {type(e).__name__}"
        h.update(f"{path.name}\0{ds.labels[i]}\0{assigned}\0{content}\n".encode())
    return h.hexdigest()


def load_dataset(path: Path) -> Dataset:
    """A folder (its manifest.csv if it has one, else its class subfolders) or a CSV manifest."""
    path = Path(path)
    if path.is_dir():
        manifest = path / MANIFEST_NAME
        return _from_manifest(manifest, path.name) if manifest.is_file() else _from_folders(path)
    if path.is_file():
        name = path.parent.name if path.name == MANIFEST_NAME else path.stem
        return _from_manifest(path, name)
    raise DatasetError(f"{path}: no such dataset (give a folder of DATA/<label>/*.wav or a CSV manifest)")


def _from_folders(root: Path) -> Dataset:
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and is_audio(p) and not p.name.startswith("."))
    if loose:
        raise DatasetError(
            f"{root}: audio files directly in the dataset folder ({', '.join(loose[:3])}...); "
            "put each clip in a folder named after its label (DATA/<label>/clip.wav) or write a manifest.csv"
        )
    paths, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        clips = sorted(p for p in find_audio(folder) if not p.name.startswith("."))
        if not clips:
            raise DatasetError(f"{folder}: class '{folder.name}' has no audio files; remove the folder or add clips")
        paths += clips
        labels += [folder.name] * len(clips)
    return _checked(Dataset(root.name, root, paths, labels))


def _from_manifest(manifest: Path, name: str) -> Dataset:
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as f:
            table = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{manifest}: not a readable CSV manifest ({exc})") from exc
    header = [h.strip().lower() for h in table[0]] if table else []
    rows = [dict(zip(header, r)) for r in table[1:]]
    if not rows:
        raise DatasetError(f"{manifest}: no rows; expected a header 'path,label[,split|fold]' and one row per clip")
    if not {"path", "label"} <= set(header):
        raise DatasetError(f"{manifest}: needs columns 'path' and 'label' (found {', '.join(header) or 'none'})")
    if "split" in header and "fold" in header:
        raise DatasetError(f"{manifest}: has both a 'split' and a 'fold' column; keep one")
    base = manifest.parent
    paths, labels, splits, folds, missing, seen = [], [], [], [], [], set()
    for line, row in enumerate(rows, start=1):
        rel, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not rel or not label:
            raise DatasetError(f"{manifest}, row {line}: empty path or label")
        clip = Path(rel) if Path(rel).is_absolute() else base / rel
        if clip in seen:
            raise DatasetError(f"{manifest}, row {line}: {rel} is listed twice")
        seen.add(clip)
        if not clip.is_file():
            missing.append(rel)
        paths.append(clip)
        labels.append(label)
        if "split" in header:
            split = SPLIT_NAMES.get((row.get("split") or "").strip().lower())
            if split is None:
                raise DatasetError(f"{manifest}, row {line}: split {row.get('split')!r} is not train, valid or test")
            splits.append(split)
        if "fold" in header:
            folds.append((row.get("fold") or "").strip())
    if missing:
        raise DatasetError(
            f"{manifest}: {len(missing)} listed files do not exist (paths are relative to the manifest's folder): "
            + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        )
    return _checked(Dataset(name, manifest, paths, labels, splits or None, folds or None))


def _checked(ds: Dataset) -> Dataset:
    """Refuse datasets a linear probe cannot score, with the reason and the fix."""
    if len(ds.classes) < 2:
        only = f" (only '{next(iter(ds.classes))}')" if ds.classes else ""
        raise DatasetError(f"{ds.source}: needs at least 2 classes{only}; a classifier needs something to tell apart")
    if ds.split is not None:
        present = set(ds.split)
        for needed in ("train", "test"):
            if needed not in present:
                raise DatasetError(f"{ds.source}: the split column has no '{needed}' rows")
    if ds.fold is not None:
        if "" in ds.fold:
            raise DatasetError(f"{ds.source}: some rows have an empty fold")
        if len(set(ds.fold)) < 2:
            raise DatasetError(f"{ds.source}: leave-one-fold-out needs at least 2 distinct folds")
    return ds
