"""The `audioembed` command: embed folders of audio into .npy files, show model info, train, evaluate."""

from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

import typer

from . import console, files, outputs
from .audio import AUDIO_EXTENSIONS
from .errors import printable

# huggingface_hub (2.x) asks the hub for a telemetry registry before its first request: against a hub that
# does not answer, one more wait before the one hub.HUB_TIMEOUT bounds. The command turns it off unless asked.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

MAX_PENDING_WRITES = 8
MAX_LISTED = 10  # skipped files named in the summary

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


@app.command()
def embed(
    paths: List[str] = typer.Argument(..., help="Audio files or folders (searched recursively by audio extension; hidden folders only when named)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: mirrors the input tree with one .npy per file (several inputs: a subfolder each). One file and NAME.npy: that file."),
    frames: bool = typer.Option(False, "--frames", help="Also write NAME.frames.npy (T, D) and NAME.timestamps.npy (ms)."),
    stack: bool = typer.Option(False, "--stack", help="Write one OUT/embeddings.npy (N, D) and OUT/index.csv instead."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute outputs that already exist (default: skip them)."),
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    device: str = DeviceOpt,
    batch_size: int = BatchSizeOpt,
    workers: int = typer.Option(min(4, os.cpu_count() or 1), "--workers", min=1, help="Parallel decoding threads."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary and errors: no progress bar, notes or decoder messages."),
) -> None:
    """Embed audio files; bad files are reported at the end and make the exit status 1. Rerun to resume."""
    if stack and frames:
        _err("error: --stack and --frames cannot be combined")
        raise typer.Exit(2)
    if any(not p for p in paths):  # Path("") would be the current folder
        _err("error: an empty path was given; name a file or folder (. for the current folder)")
        raise typer.Exit(2)
    ignored: list[Path] = []
    notes: list[str] = []
    jobs, failures = outputs.plan([Path(p) for p in paths], out, frames=frames, stack=stack, ignored=ignored, notes=notes)
    if not jobs and not failures:
        _err(f"error: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) under {', '.join(map(str, paths))}")
        raise typer.Exit(2)
    single = len(jobs) == 1 and jobs[0].clip == out  # -o NAME.npy for one file
    try:
        (out.parent if single else out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"error: cannot create the output folder {out} ({exc.strerror or exc})")
        raise typer.Exit(2)
    if not single:
        files.remove_stale_temp_files(out)
    embedder = _load_embedder(model, revision, backend, device, quiet, batch_size=batch_size, num_workers=workers)
    lock = outputs.OutLock(out)
    try:
        try:
            if stack:  # one stack job at a time on OUT, to the end: each reads and replaces the whole stack
                lock.acquire(None if quiet else lambda: _err(f"note: another audioembed job is writing to {out}; waiting for it (Ctrl-C stops)"))
            if not single:
                outputs.claim(out, embedder.model_record(), overwrite)
            if not single and not stack:
                outputs.record_sources(out, jobs)  # search names the audio a tree's .npy came from
        except outputs.OutputError as exc:
            _err(f"error: {exc}")
            raise typer.Exit(2)
        except OSError as exc:  # a read-only or full OUT
            _err(f"error: cannot record the model in {out} ({exc.strerror or exc})")
            raise typer.Exit(2)
        if not quiet:
            for note in notes:
                _err(note)
        _embed_into(out, jobs, failures, embedder, frames, stack, overwrite, quiet)
    finally:
        lock.release()
    if ignored and not quiet:
        names = ", ".join(map(str, ignored[:MAX_LISTED])) + (f" and {len(ignored) - MAX_LISTED} more" if len(ignored) > MAX_LISTED else "")
        _err(f"left out (not audio by extension): {names}")
    _exit_on_failures(failures)


def _embed_into(out: Path, jobs: list, failures: list, embedder, frames: bool, stack: bool, overwrite: bool, quiet: bool) -> None:
    """Embed what is not done yet and, for --stack, assemble the stack; says what was done."""
    previous, rows = (None, {}) if overwrite or not stack else outputs.read_stack(out, embedder.dim)
    if stack and overwrite:
        outputs.clear_parts(out)  # parts of an interrupted run are outputs too: --overwrite recomputes them
    todo = jobs if overwrite else [j for j in jobs if not j.done() and outputs.row_key(j, rows) is None]
    skipped = len(jobs) - len(todo)
    planned_failures = len(failures)
    done, interrupted = _embed_jobs(embedder, todo, failures, frames, quiet)
    if interrupted:
        left = len(todo) - done - (len(failures) - planned_failures)
        after = "; embeddings.npy is assembled when a run completes" if stack else ""
        _err(
            f"interrupted: {done} embedded and written, {left} not done; run the same command again to continue "
            f"(written files are kept and skipped){after}"
        )
        raise typer.Exit(130)
    if stack:
        try:
            outputs.assemble_stack(out, jobs, previous, rows, embedder.dim)
        except (OSError, ValueError) as exc:
            _err(f"error: cannot write embeddings.npy and index.csv in {out} ({getattr(exc, 'strerror', None) or exc})")
            raise typer.Exit(2)
    _err(f"{done} embedded, {skipped} skipped (already done), {len(failures)} failed -> {out}")


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
        weights = [outputs.audio_seconds(j.source) for j in todo] if show else [1.0] * len(todo)
        with console.decoder_messages(quiet), ThreadPoolExecutor(1) as writer, outputs.progress(
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


@app.command()
def info(
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    device: str = DeviceOpt,
) -> None:
    """Show which model resolves, from where, on which backend, and its files' sha256."""
    from . import __version__
    from . import model_folder

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


UNRELATED_SCORES = (0.45, 0.9)  # audioembed-base, between the different recordings of examples/ (tests/test_search.py)
SCORE_HELP = (
    "Scores are cosine similarities, from -1 to 1: 1.0 is the same vector (the same sound). They rank rather "
    "than measure: with audioembed-base, different recordings still score {:.2f} to {:.2f}, so compare the "
    "scores of one search with each other, not with a fixed threshold."
).format(*UNRELATED_SCORES)


@app.command(help="Find the nearest neighbours (cosine similarity) of each query in an index of embeddings.\n\n" + SCORE_HELP)
def search(
    queries: List[Path] = typer.Argument(..., help="Audio files (embedded with --model), or .npy vectors to search for: (D,) or (N, D) for N queries."),
    index: Path = typer.Option(..., "--index", "-i", help="A folder written by `audioembed embed` (tree or --stack) or `embed-cluster` (Parquet)."),
    k: int = typer.Option(10, "-k", min=1, help="Neighbours per query."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: one object per query with its neighbours."),
    exclude_self: bool = typer.Option(False, "--exclude-self", help="Leave each query's own file (or row) out of its neighbours."),
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    device: str = DeviceOpt,
) -> None:
    import json

    import numpy as np

    from .errors import AudioEmbedError
    from .index import load_index
    from .search import finite_rows, top_k

    try:
        idx = load_index(index)
    except AudioEmbedError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    names, vectors, selves, failures = _query_vectors(queries, model, revision, backend, device, idx, exclude_self)
    ok = []
    for i, (name, v) in enumerate(zip(names, vectors)):
        if v.shape != (idx.dim,):
            failures.append(f"{name}: a vector of shape {v.shape}, but the index holds {idx.dim}-d embeddings; "
                            "embed the query with the model that wrote the index")
        elif not np.isfinite(v).all():
            failures.append(f"{name}: its vector holds NaN or inf values; not searched")
        else:
            ok.append(i)
    bad_rows = np.flatnonzero(~finite_rows(idx.vectors))
    for row in bad_rows[:MAX_LISTED]:
        _err(f"note: {idx.path}: {idx.names[row]} holds NaN or inf values; left out of the search")
    if len(bad_rows) > MAX_LISTED:
        _err(f"note: {idx.path}: {len(bad_rows) - MAX_LISTED} more rows hold NaN or inf values; left out of the search")
    report = []
    if ok:
        drop = [selves[i] for i in ok]
        rows, scores = top_k(np.stack([vectors[i] for i in ok]), idx.vectors, k + max(map(len, drop)))
        for i, r, sc, own in zip(ok, rows, scores, drop):
            kept = [(j, s) for j, s in zip(r, sc) if j not in own][:k]
            report.append({"query": names[i], "neighbours": [
                {"rank": rank + 1, "name": idx.label(j), "score": round(float(s), 6)} for rank, (j, s) in enumerate(kept)
            ]})
    if as_json:
        typer.echo(_json_text(json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False)))
    else:
        for item in report:
            typer.echo(printable(item["query"]))
            for n in item["neighbours"]:
                typer.echo(f"  {n['rank']:>3}  {n['score']:.4f}  {printable(n['name'])}")
    _exit_on_failures(failures)


def _json_text(text: str) -> str:
    """JSON safe for a terminal and any stdout encoding: control characters and the bytes of a name that are not
    UTF-8 (surrogates) as \\u escapes, which json.loads turns back into the same str (os.fsencode: the bytes)."""
    def escape(c: str) -> str:
        if c == "\n" or c.isprintable():
            return c
        units = c.encode("utf-16-le", "surrogatepass")
        return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'little'):04x}" for i in range(0, len(units), 2))

    return "".join(map(escape, text))


def _query_vectors(queries, model, revision, backend, device, idx, exclude_self=False):
    """Vectors for the search queries (.npy files as they are, a row each; audio files embedded with one model
    load at most), with the index rows that are each query's own file (for --exclude-self)."""
    from .errors import IndexFormatError
    from .index import read_npy, same_model

    names, vectors, selves, failures, audio_files = [], [], [], [], []
    own_rows = _own_rows(idx) if exclude_self else (lambda query: set())
    for q in queries:
        if q.suffix.lower() == ".npy":
            try:
                v = read_npy(q, ndim=(1, 2))
            except IndexFormatError as exc:
                failures.append(str(exc))
                continue
            stacked = idx.path.resolve() / "embeddings.npy" == q.resolve()  # the index's own --stack matrix
            for i, row in enumerate(v if v.ndim == 2 else [v]):
                names.append(f"{q}[{i}]" if v.ndim == 2 else str(q))
                vectors.append(row)
                selves.append({i} if stacked and exclude_self else own_rows(q))
        elif q.is_dir():
            audio_files += files.find_audio(q, failures)
        elif q.is_file():
            audio_files.append(q)
        else:
            failures.append(f"{q}: no such file or folder")
    if audio_files:
        embedder = _load_embedder(model, revision, backend, device)
        record = embedder.model_record()
        if idx.model is None:
            _err(f"note: {idx.path} does not record which model wrote it (an older audioembed); "
                 "make sure the queries are embedded with that model")
        elif not same_model(idx.model, record):
            _err(f"error: {idx.path} was written by {idx.model.get('model')} (revision {idx.model.get('revision')}), "
                 f"but the queries would be embedded with {record['model']} (revision {record['revision']}); "
                 f"their scores would mean nothing: pass --model {idx.model.get('model')}, or embed the index again")
            raise typer.Exit(2)
        embedded = {}
        for result in embedder.iter_results(audio_files):
            if result.error is not None:
                failures.append(str(result.error))
            else:
                embedded[result.index] = result.embedding
        for i in sorted(embedded):
            names.append(str(audio_files[i]))
            vectors.append(embedded[i])
            selves.append(own_rows(audio_files[i]))
    return names, vectors, selves, failures


def _own_rows(idx):
    """query path -> the index rows written from that file: a --stack or Parquet row names its input; a tree's
    .npy mirrors the input's path below the folder embedded, so the longest matching tail of the path counts."""
    by_path, by_tail = {}, {}
    root = os.path.abspath(idx.path)
    for row, name in enumerate(idx.names):  # abspath: no system call per row of a large index
        if name.endswith(".npy") and not os.path.isabs(name):
            by_path.setdefault(os.path.join(root, os.path.normpath(name)), set()).add(row)
            by_tail.setdefault(Path(name).with_suffix("").parts, set()).add(row)
        else:
            by_path.setdefault(os.path.abspath(name), set()).add(row)

    def rows(query: Path) -> set:
        if os.path.abspath(query) in by_path:
            return by_path[os.path.abspath(query)]
        parts = Path(os.path.abspath(query)).with_suffix("").parts
        for n in range(len(parts), 0, -1):
            if parts[-n:] in by_tail:
                return by_tail[parts[-n:]]
        return set()

    return rows


def _register_subcommands() -> None:
    """Commands whose code lives in subpackages; their heavy imports happen only when they run."""
    from .eval.command import evaluate
    from .integrations.ray import embed_cluster
    from .push import push
    from .train.command import pretrain

    app.command("pretrain")(pretrain)
    app.command("embed-cluster")(embed_cluster)
    app.command("evaluate")(evaluate)
    app.command("push")(push)


_register_subcommands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
