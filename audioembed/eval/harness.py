"""Run every row (models, baselines, peers) on every dataset with the same splits; collect the cells."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import features, probe
from .dataset import Dataset


@dataclasses.dataclass
class Row:
    """A line of the table: an extractor, or the reason it has none (not installed, failed to load)."""

    name: str
    kind: str  # "model", "baseline" or "peer"
    extractor: features.Extractor | None = None
    note: str | None = None
    failed: bool = False  # True: the note is an error (exit status 1), False: a skip


@dataclasses.dataclass
class Cell:
    row: str
    dataset: str
    runs: list[probe.Run]
    clips_used: int
    failures: list[str]
    computed: int
    reused: int
    error: str | None = None
    left_out: list[int] = dataclasses.field(default_factory=list)  # the dataset's clips this row could not embed

    @property
    def marked(self) -> bool:
        """The `*` of the table: clips were left out of this cell's runs."""
        return bool(self.failures)

    @property
    def mean(self) -> float | None:
        return float(np.mean([r.accuracy for r in self.runs])) if self.runs else None

    @property
    def std(self) -> float | None:
        return float(np.std([r.accuracy for r in self.runs])) if self.runs else None


def run(
    datasets: list[Dataset],
    rows: list[Row],
    cache: Path,
    folds: int = 5,
    seeds: int = 3,
    log: Callable[[str], None] = lambda msg: None,
) -> list[Cell]:
    """Cells for every (row with an extractor, dataset), each dataset's splits shared by all rows."""
    cells = []
    for ds in datasets:
        splits = probe.plan(ds.labels, ds.split, ds.fold, folds=folds, seeds=seeds)
        labels = np.asarray(ds.labels)
        for row in rows:
            if row.extractor is None:
                continue
            started = time.monotonic()
            feats = features.compute(row.extractor, ds.paths, cache)
            embedded = time.monotonic()
            left_out = sorted(set(range(len(ds.paths))) - set(feats.ok.tolist()))
            cell = Cell(row.name, ds.name, [], len(feats.ok), feats.failures, feats.computed, feats.reused, left_out=left_out)
            try:
                if not len(feats.ok):
                    raise probe.ProbeError("no clip could be embedded")
                y = labels[feats.ok]
                restricted = [s.restricted(feats.ok, len(labels)) for s in splits]
                cell.runs, probe_cached = probe.score_all(feats.matrix, y, restricted, cache)
            except probe.ProbeError as exc:
                cell.error, probe_cached = str(exc), False
            outcome = f"error: {cell.error}" if cell.error else f"{100 * cell.mean:.1f} ± {100 * cell.std:.1f}"
            log(
                f"{ds.name}: {row.name}: {outcome} ({len(feats.ok)}/{len(ds.paths)} clips: {feats.reused} cached, "
                f"{feats.computed} computed, {len(feats.failures)} failed; embedding {embedded - started:.0f} s, "
                f"probe {'cached' if probe_cached else f'{time.monotonic() - embedded:.0f} s'})"
            )
            cells.append(cell)
    return cells


def uneven(cells: list[Cell]) -> list[str]:
    """Datasets on which the rows were scored on different clips (one row lost clips another embedded)."""
    by_dataset: dict[str, set[tuple[int, ...]]] = {}
    for cell in cells:
        if cell.error is None:
            by_dataset.setdefault(cell.dataset, set()).add(tuple(cell.left_out))
    return [name for name, kinds in by_dataset.items() if len(kinds) > 1]
