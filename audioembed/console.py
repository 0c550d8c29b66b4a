"""The command line's shared parts: the options several commands take, loading the model they name, and what
it tells the user on stderr (plain one-line notes, never a Python warning with its source line; a progress bar)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from typing import Callable, Iterator

import typer
import typer.core


def _plain_flags(command, ctx) -> None:
    """Typer 0.2x labels every option with its type in help, `--frames <bool>`, as if a flag took a value;
    an empty metavar drops the label, for flags only (--help included)."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class Group(typer.core.TyperGroup):
    """The `audioembed` app (`typer.Typer(cls=console.Group)`): its help and every command's show flags plainly."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            command.format_help = _plain_help(command)

    def format_help(self, ctx, formatter) -> None:
        _plain_flags(self, ctx)
        super().format_help(ctx, formatter)


def _plain_help(command):
    format_help = command.format_help

    def plain(ctx, formatter) -> None:
        _plain_flags(command, ctx)
        format_help(ctx, formatter)

    return plain


def version_option(value: bool) -> None:
    """`audioembed --version`."""
    if value:
        from . import __version__

        typer.echo(f"audioembed {__version__}")
        raise typer.Exit()


ModelOpt = typer.Option(
    None, "--model", "-m", help="Hub repo id or local model folder (default: audioembed-base, the copy bundled with audioembed: no network; hf-hub:audioembed/audioembed-base asks the Hub)."
)
RevisionOpt = typer.Option(None, "--revision", help="Hub revision: tag, branch or commit sha.")
BackendOpt = typer.Option("auto", "--backend", help="auto (torch on a CUDA GPU, else onnx; openvino with --precision bf16), torch, onnx or openvino.")
PrecisionOpt = typer.Option("auto", "--precision", help="auto or f32 (float32), or bf16 (openvino, on a CPU with native bfloat16; less accurate: docs/cli.md).")
DeviceOpt = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda (torch).")
BatchSizeOpt = typer.Option(16, "--batch-size", min=1, help="Windows (up to ~10 s each) per model call.")


MAX_LISTED = 10  # skipped files (or rows) named in a summary


def err(msg: str) -> None:
    from .errors import printable

    typer.echo(printable(msg), err=True)  # file names may hold escape sequences or bytes that are not UTF-8


def exit_on_failures(failures: list, where: str = "") -> None:
    """List what failed at the end of a batch job and exit 1; nothing when all went well."""
    if failures:
        err(f"{len(failures)} failed{where}:")
        for message in failures:
            err(f"  {message}")
        raise typer.Exit(1)


def load_embedder(model, revision, backend, device, quiet: bool = False, precision: str = "auto", **kw):
    """The Embedder a command asked for; a model that cannot load is one `error:` line and exit status 2."""
    from . import Embedder
    from .errors import AudioEmbedError

    try:
        with model_notes(quiet):
            embedder = Embedder(model, revision=revision, backend=backend, device=device, precision=precision, **kw)
    except AudioEmbedError as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    return embedder


@contextlib.contextmanager
def model_notes(quiet: bool = False) -> Iterator[None]:
    """Say where a model came from when it was a fallback, as one `note:` line; library users get the warning."""
    from .errors import ModelSourceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelSourceWarning)
        yield
    for w in caught:
        if issubclass(w.category, ModelSourceWarning):
            if not quiet:
                err(f"note: {w.message}")
        else:  # anything else is shown as it would have been
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def decoder_messages(quiet: bool = False) -> Iterator[None]:
    """C decoders (libmpg123 inside libsndfile) write to file descriptor 2 themselves, naming no file.

    Their lines are caught through a pipe: dropped with --quiet, else shown after the name of the file being
    decoded (the decoding thread drains the pipe after each call, while its file still counts as being decoded).
    Python's own stderr keeps the terminal. Not on Windows, where descriptors are not shared this way.
    """
    if os.name == "nt":
        yield
        return
    try:
        python_on_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test runner's stream: it has no descriptor, fd 2 is free to catch
        python_on_fd2 = False
    from . import audio

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr at all (closed, pythonw): nothing to catch
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.dup2(write_end, 2)
    os.close(write_end)
    python_stderr = sys.stderr
    if python_on_fd2:
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace")
    catcher = _Catcher(read_end, quiet)
    stop = threading.Event()
    reader = threading.Thread(target=catcher.watch, args=(stop,), daemon=True)  # lines written between decoder calls
    reader.start()
    audio.after_native_call = catcher.drain
    try:
        yield
    finally:
        audio.after_native_call = None
        os.dup2(saved, 2)
        os.close(saved)
        stop.set()
        reader.join(timeout=5)
        catcher.drain(final=True)
        os.close(read_end)
        if python_on_fd2:
            sys.stderr.close()
        sys.stderr = python_stderr


class _Catcher:
    """Reads the pipe that stands in for fd 2 and shows its complete lines, each with the files being decoded."""

    def __init__(self, fd: int, quiet: bool) -> None:
        self.fd, self.quiet = fd, quiet
        self.lock = threading.Lock()
        self.partial = b""

    def watch(self, stop: threading.Event) -> None:
        import select

        while not stop.is_set():
            select.select([self.fd], [], [], 0.1)
            self.drain()

    def drain(self, final: bool = False) -> None:
        from .audio import decoding

        with self.lock:
            data = self.partial
            while True:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                data += chunk
            *lines, self.partial = data.split(b"\n")
            if final and self.partial:
                lines.append(self.partial)
                self.partial = b""
            if self.quiet:
                return
            names = " or ".join(decoding())
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    err(f"{names}: decoder: {line}" if names else f"decoder: {line}")


def audio_seconds(path: str | os.PathLike) -> float:
    """How much work a file is, for the progress bar's ETA: its duration from the header where libsndfile gives one
    (reading no samples), else its size at 32 kB/s (16 kHz, 16-bit); at least 0.1 s, so every file counts."""
    try:
        import soundfile as sf

        seconds = sf.info(os.fspath(path)).duration
    except Exception:  # not a libsndfile format (m4a, ...), unreadable, or gone: the size says roughly as much
        try:
            seconds = os.path.getsize(path) / 32000
        except OSError:
            seconds = 0.0
    return max(float(seconds), 0.1)


@contextlib.contextmanager
def progress(files: int, disable: bool, completed: int = 0, seconds: float | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (rich), or nothing. completed: files counted before the bar starts (failed plans).

    seconds: the audio the files hold; then the bar and its ETA advance by audio seconds (`advance(s)` per file),
    which a folder of short clips and a few long recordings needs (counting files, 493 of 502 said 1 s and took 44),
    while the counter still shows files."""
    if disable:
        yield lambda weight=1.0: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    columns = [TextColumn("embedding"), BarColumn(), TextColumn("{task.fields[done]}/{task.fields[files]} files"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    total = seconds if seconds is not None else float(files)
    done = [completed]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        start = 0.0 if seconds is not None else float(completed)  # failed plans hold no audio left to embed
        task = bar.add_task("embed", total=total, completed=start, done=completed, files=files)

        def advance(weight: float = 1.0) -> None:
            done[0] += 1
            bar.update(task, advance=weight if seconds is not None else 1.0, done=done[0])

        yield advance
