"""The `audioembed` command: embed folders of audio into .npy files, show model info, train, evaluate."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import console, search_command
from .audio import AUDIO_EXTENSIONS
from .errors import printable
from .outputs.command import embed

# huggingface_hub (2.x) asks the hub for a telemetry registry before its first request: against a hub that
# does not answer, one more wait before the one hub.HUB_TIMEOUT bounds. The command turns it off unless asked.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Audio embeddings from a self-supervised CNN.",
                  cls=console.Group)

ModelOpt, RevisionOpt = console.ModelOpt, console.RevisionOpt
BackendOpt, DeviceOpt, BatchSizeOpt = console.BackendOpt, console.DeviceOpt, console.BatchSizeOpt


_err, _exit_on_failures, _load_embedder = console.err, console.exit_on_failures, console.load_embedder


@app.callback()
def _app(
    version: bool = typer.Option(False, "--version", callback=console.version_option, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Audio embeddings from a self-supervised CNN."""


app.command()(embed)  # outputs/command.py


@app.command("embed-cluster")
def embed_cluster(
    sources: List[Path] = typer.Argument(..., help="Folders (searched recursively), audio files, or manifests (one path per line)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder of Parquet shards (e.g. vectors.parquet)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Model actors (one Embedder each)."),
    threads: int = typer.Option(os.cpu_count() or 1, "--threads", min=1, help="Cores per actor: model and decode threads."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (default: a local Ray instance)."),
    frames: bool = typer.Option(False, "--frames", help="Also write frames (T, D) and timestamps (ms) columns."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Remove OUT's shards first and recompute every file (e.g. with another model)."),
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    batch_size: int = BatchSizeOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Embed on Ray Data (the `ray` extra): Parquet rows path, embedding, sr, seconds, error; resumable."""
    from . import distributed, parquet

    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        from .errors import install_hint

        _err(f"error: embed-cluster needs Ray Data: {install_hint('ray')}")
        raise typer.Exit(2)
    failures: list[str] = []
    paths = distributed.list_inputs(sources, failures)
    if not paths:
        _err(f"error: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in {', '.join(map(str, sources))}")
        raise typer.Exit(2)
    if out.exists() and not out.is_dir():
        _err(f"error: {out} is a file; OUT is a folder of Parquet shards: choose another name")
        raise typer.Exit(2)
    if model and Path(model).is_dir():  # a local model folder: workers do not share the driver's cwd
        model = os.path.abspath(model)
    # the model the shards will record, resolved here as the workers will (a bad -m fails now, in one line)
    record = _load_embedder(model, revision, backend, "cpu", quiet, num_threads=1).model_record()
    try:
        found = parquet.scan(out, record, overwrite=overwrite)
    except parquet.OutputError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    for message in found.notes:
        _err(f"warning: {message}")
    todo = [p for p in paths if parquet.text(p) not in found.done]
    if todo:
        distributed.run(
            todo, out, workers=workers, threads=threads, record=record, address=address, frames=frames,
            progress=not quiet, model=model, revision=revision, backend=backend, batch_size=batch_size,
        )
    wanted = {parquet.text(p) for p in todo}
    table = parquet.read_table(out, ["path", "error"]).to_pydict() if todo else {"path": [], "error": []}
    row_errors = [e for p, e in zip(table["path"], table["error"]) if e is not None and p in wanted]
    failed = failures + row_errors
    _err(f"{len(todo) - len(row_errors)} embedded, {len(paths) - len(todo)} skipped (already in {out}), {len(failed)} failed")
    _exit_on_failures(failed, f" (bad files are rows with an error in {out})")


@app.command()
def info(
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    device: str = DeviceOpt,
) -> None:
    """Show which model resolves, from where, on which backend, and its files' sha256."""
    from . import __version__
    from . import folder as model_folder

    e = _load_embedder(model, revision, backend, device)
    cfg, r = e.config, e.resolved
    rows = [
        ("audioembed", __version__),
        ("model", r.model_id),
        ("revision", r.revision or "-"),
        ("source", r.source),
        ("folder", str(r.folder)),
        ("backend", f"{e.backend_name} ({e.backend.device})"),
        ("dim", str(cfg.dim)),
        ("sample rate", f"{cfg.sample_rate} Hz"),
        ("frame hop", f"{cfg.frame_seconds * 1000:g} ms"),
    ]
    for name in sorted(os.listdir(r.folder)):
        path = r.folder / name
        if path.is_file() and name != model_folder.CONFIG and not name.endswith(".md"):
            try:
                digest = model_folder.sha256(path)
            except OSError as exc:  # an extra file the user cannot read is no reason to fail
                rows.append((name, f"unreadable ({exc.strerror or exc})"))
                continue
            expected = cfg.sha256.get(name)
            status = "" if expected is None else (" (verified)" if expected == digest else " (MISMATCH)")
            rows.append((name, digest + status))
    rows = [(printable(k), printable(v)) for k, v in rows]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")


app.command(help=search_command.HELP)(search_command.search)  # search_command.py


def _register_subcommands() -> None:
    """Commands whose code lives in subpackages; their heavy imports happen only when they run."""
    from .eval.command import evaluate
    from .push import push
    from .train.command import pretrain

    app.command("pretrain")(pretrain)
    app.command("evaluate")(evaluate)
    app.command("push")(push)


_register_subcommands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
