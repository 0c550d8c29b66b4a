"""The linear-probe protocol (EVAR / BYOL-A): standardise on the training split, logistic regression,
regularisation chosen on a validation split, accuracy over folds x seeds.

Splits come from the data when it has them (a `split` column, or a `fold` column meaning
leave-one-fold-out) and from stratified k-fold otherwise. The validation split is carved from the
training portion (stratified) unless the data gives one; the chosen C is then refit on train+valid.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import AudioEmbedError, install_hint

C_GRID = (1e-2, 1e-1, 1.0, 10.0, 100.0)  # inverse L2 strength; ties go to the stronger regularisation
VALID_FRACTION = 0.2
MAX_ITER = 1000
PROBE_THREADS = 1  # BLAS / OpenMP threads while fitting (see score)


class ProbeError(AudioEmbedError):
    """The probe cannot run: scikit-learn missing, or a split that cannot be scored."""


def require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise ProbeError(f"audioembed evaluate needs scikit-learn: {install_hint('eval')}") from exc


@dataclasses.dataclass(frozen=True)
class Run:
    """One fit and score: which seed and fold, the accuracy on its test clips, and the chosen C."""

    seed: int
    fold: str
    accuracy: float
    C: float
    n_train: int
    n_test: int


@dataclasses.dataclass(frozen=True)
class Split:
    seed: int
    fold: str
    train: np.ndarray
    valid: np.ndarray | None  # None: carve from train
    test: np.ndarray

    def restricted(self, ok: np.ndarray, n: int) -> "Split":
        """The same split over the rows `ok` of n clips (clips a row failed on drop out), renumbered."""
        position = np.full(n, -1)
        position[ok] = np.arange(len(ok))

        def keep(idx: np.ndarray | None) -> np.ndarray | None:
            return None if idx is None else position[idx][position[idx] >= 0]

        return Split(self.seed, self.fold, keep(self.train), keep(self.valid), keep(self.test))


def plan(
    labels: Sequence[str],
    split: Sequence[str] | None = None,
    fold: Sequence[str] | None = None,
    folds: int = 5,
    seeds: int = 3,
) -> list[Split]:
    """The train/valid/test index sets to score, in a fixed order."""
    y = np.asarray(labels)
    if split is not None:
        s = np.asarray(split)
        train, valid, test = (np.flatnonzero(s == name) for name in ("train", "valid", "test"))
        if len(valid):  # nothing random left: one run
            return [Split(0, "test", train, valid, test)]
        return [Split(seed, "test", train, None, test) for seed in range(seeds)]
    if fold is not None:
        f = np.asarray(fold)
        names = sorted(set(fold))
        return [
            Split(seed, name, np.flatnonzero(f != name), None, np.flatnonzero(f == name))
            for seed in range(seeds)
            for name in names
        ]
    from sklearn.model_selection import StratifiedKFold

    smallest = min(np.unique(y, return_counts=True)[1])
    if smallest < folds:
        raise ProbeError(
            f"the smallest class has {smallest} clips, fewer than the {folds} folds of k-fold; "
            f"use --folds {max(2, smallest)} or add clips"
        )
    out = []
    for seed in range(seeds):
        kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for k, (train, test) in enumerate(kfold.split(np.zeros(len(y)), y)):
            out.append(Split(seed, str(k), train, None, test))
    return out


def carve_valid(train: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified validation split from the training indices (plain random if a class is too small)."""
    from sklearn.model_selection import train_test_split

    n_valid = max(len(np.unique(y[train])), int(round(VALID_FRACTION * len(train))))
    try:
        fit, valid = train_test_split(train, test_size=n_valid, stratify=y[train], random_state=seed)
    except ValueError:
        fit, valid = train_test_split(train, test_size=n_valid, random_state=seed)
    return np.sort(fit), np.sort(valid)


def _fit(X: np.ndarray, y: np.ndarray, C: float):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the validation score judges the fit
        return model.fit(X, y)


def score(X: np.ndarray, y: np.ndarray, split: Split, c_grid: Sequence[float] = C_GRID) -> Run:
    """Choose C on the validation split, refit on train+valid, report test accuracy.

    BLAS and OpenMP run single-threaded here: on these small matrices their threads only wait on each
    other, and on busy cores that made the probe many times slower (benchmarks/probe_threads.py).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=PROBE_THREADS):
        return _score(X, y, split, c_grid)


# Bump when the protocol changes in a way its inputs do not show (the fit, the choice of C, the scoring).
PROTOCOL_VERSION = 1


def _runs_key(X: np.ndarray, y: np.ndarray, splits: Sequence[Split], c_grid: Sequence[float]) -> str:
    """A digest of everything a row's runs depend on: the features' bytes, the labels, every split's indices,
    the C grid, the protocol and scikit-learn's version."""
    import hashlib

    import sklearn

    h = hashlib.sha256()
    X = np.ascontiguousarray(X)
    h.update(repr((X.shape, X.dtype.str, PROTOCOL_VERSION, sklearn.__version__, MAX_ITER, VALID_FRACTION,
                   tuple(map(float, c_grid)))).encode())
    h.update(X.tobytes())
    h.update("\0".join(map(str, np.asarray(y).tolist())).encode())
    for s in splits:
        h.update(repr((s.seed, s.fold)).encode())
        for idx in (s.train, s.valid, s.test):
            h.update(b"-" if idx is None else np.asarray(idx, np.int64).tobytes() + b"|")
    return h.hexdigest()


def score_all(X: np.ndarray, y: np.ndarray, splits: Sequence[Split], cache: Path | None = None,
              c_grid: Sequence[float] = C_GRID) -> tuple[list[Run], bool]:
    """The runs of every split, and whether they came from the cache: rerunning `evaluate` with one model added
    probes that model only, since a row whose features, labels and splits are unchanged has the same runs."""
    from ..files import atomic_write_bytes

    entry = None if cache is None else cache / "probes" / f"{_runs_key(X, y, splits, c_grid)[:40]}.json"
    if entry is not None and entry.is_file():
        try:
            return [Run(**r) for r in json.loads(entry.read_text())], True
        except (OSError, ValueError, TypeError):  # a damaged entry is recomputed
            pass
    runs = [score(X, y, s, c_grid) for s in splits]
    if entry is not None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(entry, json.dumps([dataclasses.asdict(r) for r in runs]).encode())
    return runs, False


def _score(X: np.ndarray, y: np.ndarray, split: Split, c_grid: Sequence[float]) -> Run:
    if split.valid is None:
        fit, valid = carve_valid(split.train, y, split.seed)
    else:
        fit, valid = split.train, split.valid
    if len(split.test) == 0:
        raise ProbeError(f"fold {split.fold}: no test clips left")
    if len(np.unique(y[fit])) < 2:
        raise ProbeError(f"fold {split.fold}: the training part holds a single class")
    best_c, best = c_grid[0], -1.0
    for C in c_grid:
        accuracy = float(np.mean(_fit(X[fit], y[fit], C).predict(X[valid]) == y[valid]))
        if accuracy > best:
            best_c, best = C, accuracy
    train = np.concatenate([fit, valid])
    model = _fit(X[train], y[train], best_c)
    accuracy = float(np.mean(model.predict(X[split.test]) == y[split.test]))
    return Run(split.seed, split.fold, accuracy, best_c, len(train), len(split.test))

