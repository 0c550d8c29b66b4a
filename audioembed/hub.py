"""Find a model folder: a local folder, the Hugging Face Hub (cache, offline, pinned revision), or
the weights bundled with the package. Also checks weight files against their recorded sha256."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import stat
import warnings
from pathlib import Path

from .config import ModelConfig
from .errors import IntegrityError, ModelError, ModelNotFoundError, ModelSourceWarning

DEFAULT_MODEL = "audioembed/audioembed-base"
DEFAULT_REVISION = "v0.1.0"  # a tag on the hub; pass a commit sha to pin harder
PACKAGE_WEIGHTS = Path(__file__).parent / "weights"  # filled in the wheel from models/
SOURCE_MODELS = Path(__file__).resolve().parent.parent / "models"  # a source checkout


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    folder: Path
    source: str  # "local", "hub", "cache" or "bundled"
    model_id: str
    revision: str | None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or os.path.exists(model)


_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@=-]*(/[A-Za-z0-9_][A-Za-z0-9._+@=-]*)*")


def check_revision(revision: str) -> None:
    """A tag, branch or commit sha. Offline, huggingface_hub reads the file refs/REVISION in the cache, so a
    `..`, an absolute path or an odd character would let a revision name read a file outside it."""
    if not (isinstance(revision, str) and len(revision) <= 255 and _REVISION.fullmatch(revision)) or ".." in revision:
        raise ModelError(
            f"{revision!r} is not a valid revision: use a tag, a branch or a commit sha (letters, digits, "
            "'._-+@=', parts joined by '/', no '..')"[:400]
        )


def _weight_file_problem(path: Path) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "is missing"
    return None if stat.S_ISREG(mode) else "is not a regular file"


def bundled_folder(model_id: str, weight_file: str) -> Path | None:
    """The weights shipped inside the wheel (or in models/ of a source checkout), if any."""
    name = model_id.rsplit("/", 1)[-1]
    for root in (PACKAGE_WEIGHTS, SOURCE_MODELS):
        folder = root / name
        if (folder / "config.json").is_file() and (folder / weight_file).is_file():
            return folder
    return None


def _download(model_id: str, revision: str | None, weight_file: str, offline: bool) -> Path:
    """config.json, then the weights at the very commit the config came from: a tag that moves in between
    must not give a config of one revision with weights of another."""
    from huggingface_hub import hf_hub_download

    config = Path(hf_hub_download(model_id, "config.json", revision=revision, local_files_only=offline))
    commit = config.parent.name  # the cache keeps every file under snapshots/<commit>/
    hf_hub_download(model_id, weight_file, revision=commit, local_files_only=offline)
    return config.parent


def _offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _check_hub(model_id: str, revision: str | None, weight_file: str) -> None:
    """HEAD both files: hf_hub_download alone falls back to its cache silently when one of them fails."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    config = get_hf_file_metadata(hf_hub_url(model_id, "config.json", revision=revision))
    get_hf_file_metadata(hf_hub_url(model_id, weight_file, revision=config.commit_hash or revision))


def resolve(model: str | os.PathLike | None, revision: str | None, weight_file: str) -> ResolvedModel:
    """local folder -> hub (with its cache) -> cache only -> bundled weights, warning on each fallback."""
    if model is None:
        model, revision = DEFAULT_MODEL, revision or DEFAULT_REVISION
    model = os.fspath(model)
    if looks_like_path(model):
        folder = Path(model).expanduser()
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"{model}: not a model folder (it has no config.json)")
        problem = _weight_file_problem(folder / weight_file)
        if problem == "is missing":
            raise ModelNotFoundError(
                f"{model}: has no {weight_file}; choose the other backend or re-export the model"
            )
        if problem:
            raise ModelError(f"{model}: {weight_file} {problem}; replace it with the model's weight file")
        return ResolvedModel(folder, "local", model, None)

    if revision is not None:
        check_revision(revision)
    online_error: Exception | None = None
    offline = _offline_mode()  # asked for: the cache or the bundled weights are then no surprise, and no warning
    if not offline:
        try:
            _check_hub(model, revision, weight_file)
            return ResolvedModel(_download(model, revision, weight_file, offline=False), "hub", model, revision)
        except Exception as exc:
            online_error = exc
    try:
        folder = _download(model, revision, weight_file, offline=True)
        if online_error is not None:
            warnings.warn(
                f"{model}: hub unavailable ({_short(online_error)}); using the cached copy", ModelSourceWarning, stacklevel=3
            )
        return ResolvedModel(folder, "cache", model, revision)
    except Exception as exc:
        online_error = online_error or exc
    folder = bundled_folder(model, weight_file) if model == DEFAULT_MODEL else None
    if folder is not None:
        if not offline:
            warnings.warn(
                f"{model}: hub unavailable and not cached ({_short(online_error)}); using the weights bundled "
                f"with audioembed ({folder})",
                ModelSourceWarning,
                stacklevel=3,
            )
        return ResolvedModel(folder, "bundled", model, revision)
    hint = (
        "this installation bundles no weights for it: train them with "
        "`audioembed pretrain DATA_DIR --out models/audioembed-base`, or pass model=PATH_TO_MODEL_FOLDER"
        if model == DEFAULT_MODEL
        else "check the repo id and revision, run once online to fill the cache, or pass a local model folder"
    )
    raise ModelNotFoundError(f"{model}@{revision or 'main'}: cannot get {weight_file} ({_short(online_error)}); {hint}")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def verify(folder: Path, cfg: ModelConfig, files: list[str], required: bool = False, discard: bool = False) -> None:
    """Raise IntegrityError when a file's sha256 differs from the one recorded in config.json.

    required: downloaded and bundled weights must have a digest; a local folder is the user's own.
    discard: remove a mismatching file from the hub cache, or one bad download would poison it for good.
    """
    for name in files:
        expected = cfg.sha256.get(name)
        if expected is None:
            if required:
                raise IntegrityError(
                    f"{folder / name}: no sha256 recorded for it in config.json, so a corrupt or altered download "
                    "cannot be told apart; ask the model's publisher to re-export it with audioembed"
                )
            continue
        actual = sha256(folder / name)
        if actual != expected:
            advice = "delete it (or the hub cache entry) and download again"
            if discard and _discard_from_cache(folder / name):
                advice = "it was removed from the cache; run again to download it anew"
            raise IntegrityError(
                f"{folder / name}: sha256 {actual[:16]}… does not match {expected[:16]}… recorded in config.json; "
                f"the file is corrupt or was altered: {advice}"
            )


def _discard_from_cache(path: Path) -> bool:
    """Remove the snapshot link and its blob, but only what really lies inside the hub cache: a planted
    entry may link anywhere on disk. True if anything was removed."""
    from huggingface_hub import constants

    cache = os.path.realpath(constants.HF_HUB_CACHE)
    removed = False
    for item in {Path(os.path.realpath(path)), path}:  # the blob and its snapshot link
        if _inside(cache, os.path.realpath(item.parent)):
            with contextlib.suppress(OSError):
                item.unlink()
                removed = True
    return removed


def _inside(root: str, path: str) -> bool:
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:  # another drive (Windows)
        return False


def load_config(folder: Path) -> ModelConfig:
    try:
        return ModelConfig.load(folder / "config.json")
    except ModelError:
        raise
    except Exception as exc:  # a malformed value in an otherwise valid JSON file
        raise ModelError(f"{folder / 'config.json'}: invalid model config ({exc})") from exc
