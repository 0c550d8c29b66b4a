"""The `audioembed search` command: open an index (any format `embed` or `embed-cluster` writes), take the
queries (.npy vectors, or audio embedded with the index's model), and print each one's nearest rows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from . import console, files
from .errors import printable
from .outputs.names import EMBEDDINGS, NPY

UNRELATED_SCORES = (0.45, 0.9)  # audioembed-base, between the different recordings of examples/ (tests/test_search.py)
SCORE_HELP = (
    "Scores are cosine similarities, from -1 to 1: 1.0 is the same vector (the same sound). They rank rather "
    "than measure: with audioembed-base, different recordings still score {:.2f} to {:.2f}, so compare the "
    "scores of one search with each other, not with a fixed threshold."
).format(*UNRELATED_SCORES)
HELP = "Find the nearest neighbours (cosine similarity) of each query in an index of embeddings.\n\n" + SCORE_HELP


def search(
    queries: List[Path] = typer.Argument(..., help="Audio files (embedded with --model), or .npy vectors to search for: (D,) or (N, D) for N queries."),
    index: Path = typer.Option(..., "--index", "-i", help="A folder written by `audioembed embed` (tree or --stack) or `embed-cluster` (Parquet)."),
    k: int = typer.Option(10, "-k", min=1, help="Neighbours per query."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: one object per query with its neighbours."),
    exclude_self: bool = typer.Option(False, "--exclude-self", help="Leave each query's own file (or row) out of its neighbours."),
    model: Optional[str] = console.ModelOpt,
    revision: Optional[str] = console.RevisionOpt,
    backend: str = console.BackendOpt,
    device: str = console.DeviceOpt,
    precision: str = console.PrecisionOpt,
) -> None:
    import json

    import numpy as np

    from .errors import AudioEmbedError
    from .outputs.index import load_index
    from .search import finite_rows, top_k

    try:
        idx = load_index(index)
    except AudioEmbedError as exc:
        console.err(f"error: {exc}")
        raise typer.Exit(2)
    names, vectors, selves, failures = _query_vectors(queries, model, revision, backend, device, idx, exclude_self, precision)
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
    for row in bad_rows[:console.MAX_LISTED]:
        console.err(f"note: {idx.path}: {idx.names[row]} holds NaN or inf values; left out of the search")
    if len(bad_rows) > console.MAX_LISTED:
        console.err(f"note: {idx.path}: {len(bad_rows) - console.MAX_LISTED} more rows hold NaN or inf values; left out of the search")
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
    console.exit_on_failures(failures)


def _json_text(text: str) -> str:
    """JSON safe for a terminal and any stdout encoding: control characters and the bytes of a name that are not
    UTF-8 (surrogates) as \\u escapes, which json.loads turns back into the same str (os.fsencode: the bytes)."""
    def escape(c: str) -> str:
        if c == "\n" or c.isprintable():
            return c
        units = c.encode("utf-16-le", "surrogatepass")
        return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'little'):04x}" for i in range(0, len(units), 2))

    return "".join(map(escape, text))


def _query_vectors(queries, model, revision, backend, device, idx, exclude_self=False, precision="auto"):
    """Vectors for the search queries (.npy files as they are, a row each; audio files embedded with one model
    load at most), with the index rows that are each query's own file (for --exclude-self)."""
    from .errors import IndexFormatError
    from .outputs.npy import read_npy
    from .outputs.record import same_model

    names, vectors, selves, failures, audio_files = [], [], [], [], []
    own_rows = _own_rows(idx) if exclude_self else (lambda query: set())
    for q in queries:
        if q.suffix.lower() == NPY:
            try:
                v = read_npy(q, ndim=(1, 2))
            except IndexFormatError as exc:
                failures.append(str(exc))
                continue
            stacked = idx.path.resolve() / EMBEDDINGS == q.resolve()  # the index's own --stack matrix
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
        embedder = console.load_embedder(model, revision, backend, device, precision=precision)
        record = embedder.model_record()
        if idx.model is None:
            console.err(f"note: {idx.path} does not record which model wrote it (an older audioembed); "
                 "make sure the queries are embedded with that model")
        elif not same_model(idx.model, record, precision=False):  # bf16 queries against f32 rows: cosine ~0.9999
            console.err(f"error: {idx.path} was written by {idx.model.get('model')} (revision {idx.model.get('revision')}), "
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
        if name.endswith(NPY) and not os.path.isabs(name):
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
