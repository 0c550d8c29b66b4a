"""The results as a Markdown table (rows: models and baselines, columns: datasets) and as JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from .dataset import Dataset, fingerprint
from .harness import Cell, Row, uneven


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.error is not None:
        return "error"
    text = f"{100 * cell.mean:.1f} ± {100 * cell.std:.1f}"
    return text + "*" if cell.marked else text


def markdown(datasets: list[Dataset], rows: list[Row], cells: list[Cell]) -> str:
    """Accuracy in % (mean ± std over folds x seeds); notes under the table say what is missing and why."""
    by_key = {(c.row, c.dataset): c for c in cells}
    header = ["model"] + [f"{ds.name} ({len(ds.classes)} classes, {len(ds.paths)} clips)" for ds in datasets]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        texts = [cell_text(by_key.get((row.name, ds.name))) for ds in datasets]
        lines.append("| " + " | ".join([row.name] + texts) + " |")
    notes = [f"- {row.name}: {'error' if row.failed else 'skipped'}: {row.note}" for row in rows if row.note]
    sizes = {ds.name: len(ds.paths) for ds in datasets}
    for cell in cells:
        if cell.error is not None:
            notes.append(f"- {cell.row} on {cell.dataset}: error: {cell.error}")
        elif cell.marked:
            notes.append(f"- {cell.row} on {cell.dataset}*: {len(cell.failures)} of {sizes.get(cell.dataset, '?')} clips "
                         f"could not be embedded and were left out of its runs (listed on stderr and in --json)")
    for name in uneven(cells):
        notes.append(f"- {name}: the rows lost different clips, so their numbers are not on the same clips")
    protocols = ", ".join(f"{ds.name}: {_protocol_text(ds, cells)}" for ds in datasets)
    lines += ["", f"Linear-probe accuracy (%), mean ± std over runs ({protocols})."]
    if any(c.marked and c.error is None for c in cells):
        lines.append("*: clips that could not be embedded were left out of that cell's runs (see the notes below).")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def _protocol_text(ds: Dataset, cells: list[Cell]) -> str:
    runs = next((len(c.runs) for c in cells if c.dataset == ds.name and c.runs), 0)
    kind = {"split": "given split", "fold": "leave-one-fold-out", "kfold": "stratified k-fold"}[ds.protocol]
    return f"{kind}, {runs} runs"


def environment() -> dict[str, str | None]:
    """The versions a probe's numbers depend on (scikit-learn's solver, the BLAS under numpy, the backends), read from
    package metadata so that nothing is imported for it (torch stays unloaded on the ONNX path)."""
    import platform
    from importlib import metadata

    found: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("numpy", "scikit-learn", "onnxruntime", "torch", "soxr", "soundfile"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def to_json(datasets: list[Dataset], rows: list[Row], cells: list[Cell], settings: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to redo or re-read the table: settings, datasets, rows, per-run numbers."""
    from .. import __version__

    return {
        "audioembed": __version__,
        "environment": environment(),
        "settings": settings,
        "datasets": [
            {
                "name": ds.name,
                "source": str(ds.source),
                "clips": len(ds.paths),
                "classes": ds.classes,
                "protocol": ds.protocol,
                "sha256": fingerprint(ds),
            }
            for ds in datasets
        ],
        "rows": [
            {"name": r.name, "kind": r.kind, "key": getattr(r.extractor, "key", None), "note": r.note, "failed": r.failed}
            for r in rows
        ],
        "results": [
            {
                "row": c.row,
                "dataset": c.dataset,
                "accuracy_mean": c.mean,
                "accuracy_std": c.std,
                "runs": [dataclasses.asdict(run) for run in c.runs],
                "clips_used": c.clips_used,
                "failures": c.failures,
                "features": {"computed": c.computed, "reused": c.reused},
                "error": c.error,
            }
            for c in cells
        ],
    }
