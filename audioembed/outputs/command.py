"""The `audioembed embed` command: plan the jobs, claim OUT for the model, embed what is not done yet, write
each file as it finishes (tree, or parts assembled into the stack), and say what was done."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

import typer

from .. import console, files
from ..audio import AUDIO_EXTENSIONS
from . import record, tree
from .lock import OutLock
from .stack import assemble_stack, clear_parts, read_stack, row_key  # `stack` is embed's flag

MAX_PENDING_WRITES = 8


def embed(
    paths: List[str] = typer.Argument(..., help="Audio files or folders (searched recursively by audio extension; hidden folders only when named)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: mirrors the input tree with one .npy per file (several inputs: a subfolder each). One file and NAME.npy: that file."),
    frames: bool = typer.Option(False, "--frames", help="Also write NAME.frames.npy (T, D) and NAME.timestamps.npy (ms)."),
    stack: bool = typer.Option(False, "--stack", help="Write one OUT/embeddings.npy (N, D) and OUT/index.csv instead."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute outputs that already exist (default: skip them)."),
    model: Optional[str] = console.ModelOpt,
    revision: Optional[str] = console.RevisionOpt,
    backend: str = console.BackendOpt,
    device: str = console.DeviceOpt,
    precision: str = console.PrecisionOpt,
    batch_size: int = console.BatchSizeOpt,
    workers: int = typer.Option(min(4, os.cpu_count() or 1), "--workers", min=1, help="Parallel decoding threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary and errors: no progress bar, notes or decoder messages."),
) -> None:
    """Embed audio files; bad files are reported at the end and make the exit status 1. Rerun to resume."""
    if stack and frames:
        console.err("error: --stack and --frames cannot be combined")
        raise typer.Exit(2)
    if any(not p for p in paths):  # Path("") would be the current folder
        console.err("error: an empty path was given; name a file or folder (. for the current folder)")
        raise typer.Exit(2)
    ignored: list[Path] = []
    notes: list[str] = []
    jobs, failures = tree.plan([Path(p) for p in paths], out, frames=frames, stack=stack, ignored=ignored, notes=notes)
    if not jobs and not failures:
        console.err(f"error: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {', '.join(map(str, paths))}")
        raise typer.Exit(2)
    single = len(jobs) == 1 and jobs[0].clip == out  # -o NAME.npy for one file
    try:
        (out.parent if single else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        console.err(f"error: cannot create the output folder {out} ({exc.strerror or exc})")
        raise typer.Exit(2)
    if not single:
        files.remove_stale_temp_files(out)
    embedder = console.load_embedder(model, revision, backend, device, quiet, precision, batch_size=batch_size,
                                     num_workers=workers)
    lock = OutLock(out)
    try:
        try:
            if not single:  # one job at a time on OUT, to the end: a stack is read and replaced whole, and a tree's
                # record (its model) and sources are read, merged and written: two jobs at once would mix models
                lock.acquire(None if quiet else lambda: console.err(f"note: another audioembed job is writing to {out}; waiting for it (Ctrl-C stops)"))
            if not single:
                record.claim(out, embedder.model_record(), overwrite)
            if not single and not stack:
                tree.record_sources(out, jobs)  # search names the audio a tree's .npy came from
        except record.OutputError as exc:
            console.err(f"error: {exc}")
            raise typer.Exit(2)
        except OSError as exc:  # a read-only or full OUT
            console.err(f"error: cannot record the model in {out} ({exc.strerror or exc})")
            raise typer.Exit(2)
        if not quiet:
            for note in notes:
                console.err(note)
        _embed_into(out, jobs, failures, embedder, frames, stack, overwrite, quiet)
    finally:
        lock.release()
    if ignored and not quiet:
        names = ", ".join(map(str, ignored[:console.MAX_LISTED])) + (f" and {len(ignored) - console.MAX_LISTED} more" if len(ignored) > console.MAX_LISTED else "")
        console.err(f"left out (not audio by extension): {names}")
    console.exit_on_failures(failures)


def _embed_into(out: Path, jobs: list, failures: list, embedder, frames: bool, stack: bool, overwrite: bool, quiet: bool) -> None:
    """Embed what is not done yet and, for --stack, assemble the stack; says what was done."""
    previous, rows = (None, {}) if overwrite or not stack else read_stack(out, embedder.dim)
    if stack and overwrite:
        clear_parts(out)  # parts of an interrupted run are outputs too: --overwrite recomputes them
    todo = jobs if overwrite else [j for j in jobs if not j.done() and row_key(j, rows) is None]
    skipped = len(jobs) - len(todo)
    planned_failures = len(failures)
    done, interrupted = _embed_jobs(embedder, todo, failures, frames, quiet)
    if interrupted:
        left = len(todo) - done - (len(failures) - planned_failures)
        after = "; embeddings.npy is assembled when a run completes" if stack else ""
        console.err(
            f"interrupted: {done} embedded and written, {left} not done; run the same command again to continue "
            f"(written files are kept and skipped){after}"
        )
        raise typer.Exit(130)
    if stack:
        try:
            assemble_stack(out, jobs, previous, rows, embedder.dim)
        except (OSError, ValueError) as exc:
            console.err(f"error: cannot write embeddings.npy and index.csv in {out} ({getattr(exc, 'strerror', None) or exc})")
            raise typer.Exit(2)
    console.err(f"{done} embedded, {skipped} skipped (already done), {len(failures)} failed -> {out}")


def _embed_jobs(embedder, todo: list, failures: list, frames: bool, quiet: bool) -> tuple[int, bool]:
    """Embed and write each job as it finishes; (files written, whether Ctrl-C stopped the run).

    Nothing is held back: each file's outputs are on disk when it is counted, so a stopped run resumes.
    """
    written = [0]  # counted by the writer thread, which Ctrl-C does not interrupt: the count is exact

    def write(job, result) -> None:
        """An OSError (full disk, read-only folder, name too long) fails this file only."""
        try:
            job.write(result)
            written[0] += 1
        except OSError as exc:
            failures.append(f"{job.source}: cannot write {job.clip} ({exc.strerror or exc})")

    pending: deque = deque()
    total = len(todo) + len(failures)  # the bar counts what the summary counts: failures found while planning too
    try:
        show = not quiet and bool(todo)
        weights = [console.audio_seconds(j.source) for j in todo] if show else [1.0] * len(todo)
        with console.decoder_messages(quiet), ThreadPoolExecutor(1) as writer, console.progress(
            total, disable=not show, completed=len(failures), seconds=sum(weights)
        ) as advance:
            frames_to = (lambda i: todo[i].frames_temp()) if frames else None
            for result in embedder.iter_results([j.source for j in todo], frames=frames, frames_to=frames_to):
                if result.error is not None:
                    failures.append(str(result.error))
                else:
                    # Written (and fsynced) on a thread, so the model never waits on the disk; a few in flight at most.
                    pending.append(writer.submit(write, todo[result.index], result))
                    while len(pending) > MAX_PENDING_WRITES:
                        pending.popleft().result()
                advance(weights[result.index])
            while pending:
                pending.popleft().result()
    except KeyboardInterrupt:  # the writer finished what it had been given before the with-block let go
        return written[0], True
    return written[0], False
