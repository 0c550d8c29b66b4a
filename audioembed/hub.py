"""Where a model comes from: a local folder, the Hugging Face Hub (cache, offline, pinned revision), or
the weights bundled with the package. `fetch` is the one call: a name in, a verified folder out.

Names: the default model (None, or its id `audioembed/audioembed-base`) is the bundled copy of the pinned
revision, loaded with no network at all, whatever lies in the working directory; `hf-hub:` before its id,
or another revision, asks the Hub for it. An existing folder or a path-like name (`./m`, `/abs/m`, `~/m`,
`runs/m` when `runs/` is here) is local, and a missing one is an error, never a silent trip to the Hub;
`org/name` is a Hub repo, and `hf-hub:org/name` is one whatever lies on disk (timm's and open_clip's
prefix). Every hub request waits at most HUB_TIMEOUT seconds for an answer."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings
from pathlib import Path

from . import model_folder
from .config import ModelConfig
from .errors import ModelError, ModelNotFoundError, ModelSourceWarning

DEFAULT_MODEL = "audioembed/audioembed-base"
DEFAULT_REVISION = "v0.4.0"  # a tag on the hub; pass a commit sha to pin harder
PACKAGE_WEIGHTS = Path(__file__).parent / "weights"  # filled in the wheel from models/
SOURCE_MODELS = Path(__file__).resolve().parent.parent / "models"  # a source checkout
HUB_PREFIX = "hf-hub:"
HUB_TIMEOUT = 3.0  # seconds a hub request may wait for an answer; HF_HUB_ETAG_TIMEOUT overrides it
OFFLINE_HINT = "set HF_HUB_OFFLINE=1 to skip the hub"


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    folder: Path
    source: str  # "local", "hub", "cache" or "bundled"
    model_id: str
    revision: str | None


def looks_like_path(model: str) -> bool:
    """A name meant as a folder. `runs/model` is one when `runs/` exists here: a mistyped path must fail
    loudly, not fetch a Hub repo of that name. The default id is exempt: a source checkout has audioembed/."""
    parent = model.split("/", 1)[0] if model.count("/") == 1 and model != DEFAULT_MODEL else ""
    return (
        model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or os.path.exists(model)
        or (parent not in ("", ".", "..") and os.path.isdir(parent))
    )


_REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@=-]*(/[A-Za-z0-9_][A-Za-z0-9._+@=-]*)*")


def check_revision(revision: str) -> None:
    """A tag, branch or commit sha. Offline, huggingface_hub reads the file refs/REVISION in the cache, so a
    `..`, an absolute path or an odd character would let a revision name read a file outside it."""
    if not (isinstance(revision, str) and len(revision) <= 255 and _REVISION.fullmatch(revision)) or ".." in revision:
        raise ModelError(
            f"{revision!r} is not a valid revision: use a tag, a branch or a commit sha (letters, digits, "
            "'._-+@=', parts joined by '/', no '..')"[:400]
        )


def bundled_folder(model_id: str, revision: str | None, weight_file: str) -> Path | None:
    """The weights shipped inside the wheel (or in models/ of a source checkout): the default model at its
    pinned revision, and nothing else (another repo or revision of the same name is another model)."""
    if model_id != DEFAULT_MODEL or revision != DEFAULT_REVISION:
        return None
    for root in (PACKAGE_WEIGHTS, SOURCE_MODELS):
        folder = root / DEFAULT_MODEL.rsplit("/", 1)[-1]
        if model_folder.has_weights(folder, weight_file):
            return folder
    return None


def _download(model_id: str, revision: str | None, weight_file: str, offline: bool) -> Path:
    """config.json, then the weights at the very commit the config came from: a tag that moves in between
    must not give a config of one revision with weights of another."""
    from huggingface_hub import hf_hub_download

    t = hub_timeout()
    config = Path(hf_hub_download(model_id, model_folder.CONFIG, revision=revision, local_files_only=offline, etag_timeout=t))
    commit = config.parent.name  # the cache keeps every file under snapshots/<commit>/
    hf_hub_download(model_id, weight_file, revision=commit, local_files_only=offline, etag_timeout=t)
    return config.parent


def hub_timeout() -> float:
    """Seconds one hub request may wait: HF_HUB_ETAG_TIMEOUT when the user set it, else HUB_TIMEOUT (the
    library's own default, 10 s, plus its retries, made an unreachable hub cost 14 s a command)."""
    try:
        return float(os.environ["HF_HUB_ETAG_TIMEOUT"])
    except (KeyError, ValueError):
        return HUB_TIMEOUT


def _offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _check_hub(model_id: str, revision: str | None, weight_file: str) -> None:
    """HEAD both files: hf_hub_download alone falls back to its cache silently when one of them fails."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    t = hub_timeout()  # one try each, no retries: an unreachable hub costs t seconds, then the cache answers
    config = get_hf_file_metadata(hf_hub_url(model_id, model_folder.CONFIG, revision=revision), timeout=t)
    get_hf_file_metadata(hf_hub_url(model_id, weight_file, revision=config.commit_hash or revision), timeout=t)


def fetch(model: str | os.PathLike | None, revision: str | None, weight_file: str) -> tuple[ResolvedModel, ModelConfig]:
    """The model's folder and config, its weight file checked against config.json's sha256: required for
    what was downloaded or bundled, and a bad file in the hub cache is removed so that a rerun downloads it."""
    resolved = resolve(model, revision, weight_file)
    cfg = model_folder.load_config(resolved.folder)
    model_folder.verify(
        resolved.folder, cfg, [weight_file], required=resolved.source != "local",
        discard=_discard_from_cache if resolved.source in ("hub", "cache") else None, source=resolved.source,
    )
    return resolved, cfg


def resolve(model: str | os.PathLike | None, revision: str | None, weight_file: str) -> ResolvedModel:
    """default model -> its bundled copy; local folder; hub (with its cache) -> cache only -> bundled weights
    (the default model at its pin, asked for with hf-hub:), warning on each fallback."""
    model = DEFAULT_MODEL if model is None else os.fspath(model)
    hub_asked = model.startswith(HUB_PREFIX)
    if hub_asked:
        model = model[len(HUB_PREFIX):]
    if model == DEFAULT_MODEL:  # the default name always means the pinned default, never a folder here
        revision = revision or DEFAULT_REVISION
        folder = None if hub_asked else bundled_folder(model, revision, weight_file)
        if folder is not None:  # the bundled weights *are* the pinned revision: no network, no note
            return ResolvedModel(folder, "bundled", model, revision)
    elif not hub_asked and looks_like_path(model):
        folder = Path(model).expanduser()
        if not os.path.lexists(folder):
            repo_like = model.count("/") == 1 and not model.startswith((".", "/", "~"))
            hint = f", or write {HUB_PREFIX}{model} for the Hub repo of that name" if repo_like else ""
            raise ModelNotFoundError(f"{model}: not a model folder (no such folder); check the path{hint}")
        model_folder.check_local(folder, weight_file, model)
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
            _warn(f"{model}: hub unavailable ({_short(online_error)}); using the cached copy ({OFFLINE_HINT})")
        return ResolvedModel(folder, "cache", model, revision)
    except Exception as exc:
        online_error = online_error or exc
    folder = bundled_folder(model, revision, weight_file)
    if folder is not None:
        if not offline:
            _warn(
                f"{model}: hub unavailable and not cached ({_short(online_error)}); using the weights bundled "
                f"with audioembed ({folder}; {OFFLINE_HINT})"
            )
        return ResolvedModel(folder, "bundled", model, revision)
    hint = (
        "this installation bundles no weights for it: train them with "
        "`audioembed pretrain DATA_DIR --out models/audioembed-base`, or pass model=PATH_TO_MODEL_FOLDER"
        if model == DEFAULT_MODEL
        else "check the repo id and revision, run once online to fill the cache, or pass a local model folder"
    )
    raise ModelNotFoundError(f"{model}@{revision or 'main'}: cannot get {weight_file} ({_short(online_error)}); {hint}")


def _warn(message: str) -> None:
    """A ModelSourceWarning that points at the caller's line: the first frame outside this package."""
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 1, sys._getframe(0)  # stacklevel=1 is this frame
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, ModelSourceWarning, stacklevel=level)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


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
