"""Cosine similarity and top-k search over embeddings, in numpy (faiss's exact index on request).

The collection is read in blocks and the queries taken in groups, so a memory-mapped (N, D) matrix
of any size is searched in bounded memory: one block of `chunk_rows` rows and one
QUERY_ROWS × chunk_rows score matrix at a time (64 MB with the defaults).

One order everywhere: higher score first, then the lower row number. With more than k tied rows (silent
clips all embed to the same vector) the k lowest rows are returned, whatever the block size or path.
Rows holding NaN or inf are never returned.
"""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 16384  # collection rows scored per block
QUERY_ROWS = 1024  # queries scored together


def normalize(x: np.ndarray, axis: int = -1, dtype: type = np.float32) -> np.ndarray:
    """L2-normalised copy in float32 (zero vectors stay zero), so that dot products are cosines.

    Summed in float64, where the square of any float32 (3e19, 1e-30) neither overflows nor underflows; float64
    input is scaled by its largest magnitude first. A vector holding NaN or inf comes out as NaN."""
    wide = np.asarray(x).dtype.itemsize > 4 and np.asarray(x).dtype.kind == "f"
    x = np.array(x, dtype=np.float64)  # a copy, divided in place
    with np.errstate(invalid="ignore", over="ignore"):
        if wide and x.size:
            peak = np.max(np.abs(x), axis=axis, keepdims=True)
            x /= np.where(peak > 0, peak, 1.0)
        norm = np.linalg.norm(x, axis=axis, keepdims=True)
        x /= np.where(norm > 0, norm, 1.0)
    return x.astype(dtype, copy=False)


def finite_rows(x: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """A boolean per row of an (N, D) matrix: True where every value is finite; read in blocks."""
    return np.concatenate([np.isfinite(np.asarray(x[i : i + chunk_rows])).all(axis=1) for i in range(0, len(x), chunk_rows)]
                          or [np.zeros(0, bool)])


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Cosine of two vectors (a float), of a vector against a set (M,), or of two sets (N, M)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(f"cosine_similarity takes vectors (D,) or sets of vectors (N, D); got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cosine_similarity: dimensions differ ({a.shape[-1]} and {b.shape[-1]})")
    sims = np.clip(normalize(a, dtype=np.float64) @ normalize(b, dtype=np.float64).T, -1.0, 1.0)
    return float(sims) if sims.ndim == 0 else sims.astype(np.float32)


def top_k(
    queries: np.ndarray, collection: np.ndarray, k: int = 10, *, chunk_rows: int = CHUNK_ROWS, use_faiss: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar collection rows for each query: (indices, scores), each (Q, k), best first.

    queries: (D,) or (Q, D); collection: (N, D), e.g. `np.load(..., mmap_mode="r")`.
    Ties go to the lower row number. Collection rows holding NaN or inf are left out (so fewer than k
    columns come back when fewer finite rows exist); a query holding them is a ValueError.
    use_faiss: search with faiss's exact inner-product index instead (same neighbours; it holds the whole
    collection in memory, and building it each call made it slower than numpy here: benchmarks/search.py).
    """
    raw = np.atleast_2d(np.asarray(queries))
    if collection.ndim != 2 or raw.ndim != 2 or raw.shape[1] != collection.shape[1]:
        raise ValueError(f"top_k: queries of shape {raw.shape} against a collection of shape {collection.shape}")
    if k < 1:
        raise ValueError("top_k: k must be >= 1")
    if chunk_rows < 1:
        raise ValueError("top_k: chunk_rows must be >= 1")
    bad = np.flatnonzero(~np.isfinite(raw).all(axis=1))
    if len(bad):
        raise ValueError(f"top_k: query {bad[0]} holds NaN or inf values; it has no cosine similarity")
    q = normalize(raw, dtype=np.float64)
    if use_faiss:
        return _faiss_top_k(q, collection, k, chunk_rows)
    parts = [_numpy_top_k(q[i : i + QUERY_ROWS], collection, k, chunk_rows) for i in range(0, len(q), QUERY_ROWS)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _best_k(scores: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k best scores per row, ties to the lower row number (in `index`); a full sort
    only for the rows where more candidates reach the k-th score than can be kept."""
    keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, keep, 1).min(axis=1, keepdims=True)
    for i in np.flatnonzero((scores >= kth).sum(axis=1) > k):
        keep[i] = np.lexsort((index[i], -scores[i]))[:k]
    return keep


def _scores(q: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Q, B) cosines of normalised float64 queries with raw rows, summed in float64 and rounded to float32, so
    identical rows score identically wherever they sit; rows holding NaN or inf score -inf. And the finite mask."""
    block = normalize(rows, dtype=np.float64)
    finite = np.isfinite(block).all(axis=1)
    scores = q @ np.where(finite[:, None], block, 0.0).T
    return np.where(finite, scores, -np.inf).astype(np.float32), finite


def _numpy_top_k(q: np.ndarray, collection: np.ndarray, k: int, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    best_scores = np.full((len(q), 0), -np.inf, np.float32)
    best_index = np.zeros((len(q), 0), np.int64)
    n_finite = 0
    for start in range(0, len(collection), chunk_rows):
        block_scores, finite = _scores(q, collection[start : start + chunk_rows])
        n_finite += int(finite.sum())
        scores = np.concatenate([best_scores, block_scores], axis=1)
        index = np.concatenate([best_index, np.broadcast_to(np.arange(start, start + len(finite)), (len(q), len(finite)))], axis=1)
        if scores.shape[1] > k:
            keep = _best_k(scores, index, k)
            scores, index = np.take_along_axis(scores, keep, 1), np.take_along_axis(index, keep, 1)
        best_scores, best_index = scores, index
    order = np.lexsort((best_index, -best_scores), axis=1)[:, : min(k, n_finite)]  # best first; ties: lower row
    return np.take_along_axis(best_index, order, 1), np.take_along_axis(best_scores, order, 1)


def _faiss_top_k(q: np.ndarray, collection: np.ndarray, k: int, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact search with faiss's flat inner-product index, filled chunk by chunk with normalised finite rows.

    faiss scores in float32 and keeps any of several tied rows, so its answer is a candidate set: rescored as
    the numpy path scores (same numbers, same tie rule), and widened to every row faiss scores within its
    rounding error of the k-th (a range search) when the (k+1)-th comes that close."""
    try:
        import faiss
    except ImportError as exc:
        from .errors import install_hint

        raise ImportError(f"top_k(use_faiss=True) needs faiss: {install_hint('search')}") from exc

    index = faiss.IndexFlatIP(collection.shape[1])
    rows_of = []  # faiss's id -> collection row (rows with NaN or inf are not added)
    for start in range(0, len(collection), chunk_rows):
        block = normalize(collection[start : start + chunk_rows])
        finite = np.isfinite(block).all(axis=1)
        index.add(np.ascontiguousarray(block[finite]))
        rows_of.append(np.flatnonzero(finite) + start)
    rows_of = np.concatenate(rows_of) if rows_of else np.zeros(0, np.int64)
    k = min(k, len(rows_of))
    out_rows, out_scores = np.zeros((len(q), k), np.int64), np.zeros((len(q), k), np.float32)
    if k == 0:
        return out_rows, out_scores
    slack = 2 * q.shape[1] * 2.0**-23  # twice a bound on faiss's float32 rounding of a cosine
    q32 = np.ascontiguousarray(q, dtype=np.float32)
    found, ids = index.search(q32, min(k + 1, len(rows_of)))  # one more, to see how close the cut is
    for i in range(len(q)):
        candidates = ids[i][ids[i] >= 0]  # faiss's "no neighbour" (-1) never reaches the output
        if len(candidates) < k or (len(candidates) > k and found[i, k] >= found[i, k - 1] - slack):
            _, _, wide = index.range_search(q32[i : i + 1], float(found[i, k - 1] - slack))
            candidates = np.union1d(candidates, wide)
        rows = np.sort(rows_of[candidates])
        scores = _scores(q[i : i + 1], collection[rows])[0][0]
        best = np.lexsort((rows, -scores))[:k]
        out_rows[i], out_scores[i] = rows[best], scores[best]
    return out_rows, out_scores
