"""`audioembed push`: share a model folder on the Hugging Face Hub, checked first, with a proper Hub card."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

UPLOAD_IGNORE = [".*", "*.checkpoints/*", "*.audioembed-tmp"]  # hidden files, training checkpoints, temp files


def push(
    folder: Path = typer.Argument(..., help="A model folder (config.json, model.safetensors and/or model.onnx, README.md)."),
    repo_id: str = typer.Argument(..., help="Hub repo to upload to, e.g. your-name/my-model (created if missing)."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created from main if missing)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private (an existing repo keeps its visibility)."),
    message: str = typer.Option("Upload model with audioembed push", "--message", help="Commit message."),
) -> None:
    """Upload a model folder to the Hub; the token comes from `hf auth login` or HF_TOKEN."""
    from . import card
    from . import folder as model_folder
    from .console import err
    from .errors import AudioEmbedError

    try:
        weights = _check_folder(folder)
    except AudioEmbedError as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    if not (folder / "README.md").is_file() or card.missing_metadata(folder):
        text = card.load(folder).text if (folder / "README.md").is_file() else card.body(model_folder.load_config(folder))
        card.write(folder, text)
        err(f"wrote Hub metadata (licence: unknown; edit it in {folder / 'README.md'}) before uploading")

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private or None, exist_ok=True)  # None: the account's default
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision, commit_message=message,
                                 ignore_patterns=UPLOAD_IGNORE)
    except (HfHubHTTPError, ValueError) as exc:  # ValueError: the Hub rejected the card's metadata
        first = " ".join(str(exc).split())[:300] or type(exc).__name__
        err(f"error: cannot upload {folder} to {repo_id} ({first}); check the repo id and that your token "
            "(`hf auth login` or HF_TOKEN) may write to it")
        raise typer.Exit(1)
    typer.echo(f"uploaded {', '.join(weights)} to {repo_id}@{revision or 'main'}: {info.commit_url}")
    typer.echo(f'load it pinned: Embedder("{repo_id}", revision="{info.oid}")')


def _check_folder(folder: Path) -> list[str]:
    """Refuse to publish what Embedder would refuse to load: a bad config, no weights, or unrecorded hashes."""
    from . import folder as model_folder
    from .errors import ModelError

    weight_files = sorted(model_folder.WEIGHT_FILES)
    cfg = model_folder.load_config(folder) if (folder / model_folder.CONFIG).is_file() else None
    if cfg is None:
        raise ModelError(f"{folder}: not a model folder (it has no config.json); write one with `audioembed pretrain`")
    weights = [name for name in weight_files if (folder / name).is_file()]
    if not weights:
        raise ModelError(f"{folder}: has neither {' nor '.join(weight_files)}; nothing to upload")
    model_folder.verify(folder, cfg, weights, required=True)  # downloads are checked against these: they must be there and right
    return weights
