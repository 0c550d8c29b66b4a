"""The `audioembed` command: embed folders of audio into .npy files, show model info, train, evaluate."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from . import console, search_command
from .errors import printable
from .integrations.ray import embed_cluster
from .outputs.command import embed

# huggingface_hub (2.x) asks the hub for a telemetry registry before its first request: against a hub that
# does not answer, one more wait before the one hub.HUB_TIMEOUT bounds. The command turns it off unless asked.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Audio embeddings from a self-supervised CNN.",
                  cls=console.Group)

ModelOpt, RevisionOpt, BackendOpt, DeviceOpt = console.ModelOpt, console.RevisionOpt, console.BackendOpt, console.DeviceOpt
PrecisionOpt = console.PrecisionOpt


@app.callback()
def _app(
    version: bool = typer.Option(False, "--version", callback=console.version_option, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Audio embeddings from a self-supervised CNN."""


app.command()(embed)  # outputs/command.py
app.command("embed-cluster")(embed_cluster)  # integrations/ray.py (Ray itself is imported when it runs)


@app.command()
def info(
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    device: str = DeviceOpt,
    precision: str = PrecisionOpt,
) -> None:
    """Show which model resolves, from where, on which backend, and its files' sha256."""
    from . import __version__
    from . import model_folder

    e = console.load_embedder(model, revision, backend, device, precision=precision)
    cfg, r = e.config, e.resolved
    rows = [
        ("audioembed", __version__),
        ("model", r.model_id),
        ("revision", r.revision or "-"),
        ("source", r.source),
        ("folder", str(r.folder)),
        ("backend", f"{e.backend_name} ({e.backend.device}, {e.precision})"),
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
