"""`audioembed push`: share a model folder on the Hugging Face Hub, checked first, with a proper Hub card.

Only the model is uploaded: config.json, the weight files config.json records, README.md and training.json
(an allow-list; notes, logs, dotfiles and subfolders stay home), each opened without following links."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

import typer

RECORD = "training.json"  # how the model was trained, uploaded when present


def push(
    folder: Path = typer.Argument(..., help="A model folder (config.json, model.safetensors and/or model.onnx, README.md)."),
    repo_id: str = typer.Argument(..., help="Hub repo to upload to, e.g. your-name/my-model (created if missing)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created from main if missing)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private (an existing repo keeps its visibility)."),
    message: str = typer.Option("Upload model with audioembed push", "--message", help="Commit message."),
) -> None:
    """Upload a model folder to the Hub; the token comes from `hf auth login` or HF_TOKEN."""
    from . import card
    from .console import err
    from .errors import AudioEmbedError

    try:
        cfg, names = _check_folder(folder)
        added = card.complete(folder, cfg)
        opened = _open_files(folder, names)
    except AudioEmbedError as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    if added:
        err(f"added Hub metadata to {folder / 'README.md'} ({', '.join(f'{k}: {_short(v)}' for k, v in added.items())}); "
            "edit it there, your other keys are kept")
    sizes = {name: os.fstat(f.fileno()).st_size for name, f in opened.items()}
    try:
        info = _upload(opened, repo_id, revision, private, message)
    except Exception as exc:  # the Hub said no, or there is no Hub to say anything: one line either way
        err(f"error: cannot upload {folder} to {repo_id} ({_reason(exc)}); {_advice(exc)}")
        raise typer.Exit(1)
    finally:
        for f in opened.values():
            f.close()
    for name, size in sizes.items():
        typer.echo(f"uploaded {name} ({size:,} bytes)")
    typer.echo(f"uploaded {len(sizes)} files to {repo_id}@{revision or 'main'}: {info.commit_url}")
    typer.echo(f'load it pinned: Embedder("{repo_id}", revision="{info.oid}")')


def _short(value) -> str:
    return ", ".join(map(str, value[:2])) + ", ..." if isinstance(value, list) else str(value)


def _upload(opened: dict, repo_id: str, revision: str | None, private: bool, message: str):
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private or None, exist_ok=True)  # None: the account's default
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=f) for name, f in opened.items()]
    return api.create_commit(repo_id, operations, commit_message=message, revision=revision)


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _advice(exc: BaseException) -> str:
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) or isinstance(exc, ValueError):  # ValueError: the Hub rejected the card
        return "check the repo id and that your token (`hf auth login` or HF_TOKEN) may write to it"
    return f"check your network and that {constants.ENDPOINT} can be reached (HF_HUB_OFFLINE=1 forbids uploads)"


def _check_folder(folder: Path):
    """Refuse to publish what Embedder would refuse to load (a bad config, no weights, unrecorded hashes) or a
    model file that is a link. Returns the config and the allow-listed files present (README.md may come later)."""
    from . import model_folder
    from .errors import ModelError

    config = folder / model_folder.CONFIG
    if not (config.is_file() or config.is_symlink()):
        raise ModelError(f"{folder}: not a model folder (it has no config.json); write one with `audioembed pretrain`")
    _refuse_link(folder, model_folder.CONFIG)
    cfg = model_folder.load_config(folder)
    for name in cfg.sha256:
        if name != Path(name).name or name.startswith(".") or name in (model_folder.CONFIG, model_folder.CARD):
            raise ModelError(f"{config}: records a weight file {name!r} that is not a plain file name in the folder; "
                             "re-export the model with audioembed")
    weights = [name for name in sorted(cfg.sha256) if _present(folder / name)]
    if not any(name in model_folder.WEIGHT_FILES for name in weights):
        raise ModelError(f"{folder}: has neither {' nor '.join(model_folder.WEIGHT_FILES)}; nothing to upload")
    names = [model_folder.CONFIG, *weights, model_folder.CARD, RECORD]
    for name in names:
        _refuse_link(folder, name)
    model_folder.verify(folder, cfg, weights, required=True)  # downloads are checked against these: they must be there and right
    present = [name for name in names if name != model_folder.CARD and _present(folder / name)]
    return cfg, list(dict.fromkeys([*present, model_folder.CARD]))


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _refuse_link(folder: Path, name: str) -> None:
    from .errors import ModelError

    try:
        mode = os.lstat(folder / name).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise ModelError(f"{folder / name}: is a symbolic link; push uploads only regular files inside the model "
                         "folder: replace the link with the file itself")
    if not stat.S_ISREG(mode):
        raise ModelError(f"{folder / name}: is not a regular file; replace it with the model's {name}")


def _open_files(folder: Path, names: list[str]) -> dict:
    """Open each file without following a link (checked again: a link made since the check is refused too)."""
    from .errors import ModelError

    opened: dict = {}
    try:
        for name in names:
            try:
                fd = os.open(folder / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
            except OSError as exc:
                raise ModelError(f"{folder / name}: cannot open it without following links ({exc.strerror or exc}); "
                                 "replace it with a regular file") from None
            f = os.fdopen(fd, "rb")
            opened[name] = f
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ModelError(f"{folder / name}: is not a regular file; replace it with the model's {name}")
    except BaseException:
        for f in opened.values():
            f.close()
        raise
    return opened
