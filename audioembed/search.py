"""Cosine similarity and top-k search over embeddings, in numpy (faiss's exact index on request).

The collection is read in blocks and the queries taken in groups, so a memory-mapped (N, D) matrix
of any size is searched in bounded memory: one block of `chunk_rows` rows and one
QUERY_ROWS × chunk_rows score matrix at a time (64 MB with the defaults).
"""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 16384  # collection rows scored per block
QUERY_ROWS = 1024  # queries scored together


def normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """L2-normalised copy in float32 (zero vectors stay zero), so that dot products are cosines."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(norm, np.finfo(np.float32).tiny)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Cosine of two vectors (a float), of a vector against a set (M,), or of two sets (N, M)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(f"cosine_similarity takes vectors (D,) or sets of vectors (N, D); got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cosine_similarity: dimensions differ ({a.shape[-1]} and {b.shape[-1]})")
    sims = normalize(a) @ normalize(b).T
    return float(sims) if sims.ndim == 0 else sims


def top_k(
    queries: np.ndarray, collection: np.ndarray, k: int = 10, *, chunk_rows: int = CHUNK_ROWS, use_faiss: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar collection rows for each query: (indices, scores), each (Q, k), best first.

    queries: (D,) or (Q, D); collection: (N, D), e.g. `np.load(..., mmap_mode="r")`.
    use_faiss: search with faiss's exact inner-product index instead (same neighbours; it holds the whole
    collection in memory, and building it each call made it slower than numpy here: benchmarks/search.py).
    """
    q = normalize(np.atleast_2d(queries))
    if collection.ndim != 2 or q.shape[1] != collection.shape[1]:
        raise ValueError(f"top_k: queries of dimension {q.shape[1]} against a collection of shape {collection.shape}")
    if k < 1:
        raise ValueError("top_k: k must be >= 1")
    if chunk_rows < 1:
        raise ValueError("top_k: chunk_rows must be >= 1")
    k = min(k, len(collection))
    if use_faiss:
        return _faiss_top_k(q, collection, k, chunk_rows)
    parts = [_numpy_top_k(q[i : i + QUERY_ROWS], collection, k, chunk_rows) for i in range(0, len(q), QUERY_ROWS)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _numpy_top_k(q: np.ndarray, collection: np.ndarray, k: int, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    best_scores = np.full((len(q), 0), -np.inf, np.float32)
    best_index = np.zeros((len(q), 0), np.int64)
    for start in range(0, len(collection), chunk_rows):
        block = np.asarray(collection[start : start + chunk_rows], dtype=np.float32)
        norms = np.maximum(np.linalg.norm(block, axis=1), np.finfo(np.float32).tiny)
        scores = np.concatenate([best_scores, (q @ block.T) / norms], axis=1)  # cheaper than normalising the block
        index = np.concatenate([best_index, np.broadcast_to(np.arange(start, start + len(block)), (len(q), len(block)))], axis=1)
        if scores.shape[1] > k:
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores, index = np.take_along_axis(scores, keep, 1), np.take_along_axis(index, keep, 1)
        best_scores, best_index = scores, index
    order = np.lexsort((best_index, -best_scores), axis=1)  # best first; ties by row number, as faiss
    return np.take_along_axis(best_index, order, 1), np.take_along_axis(best_scores, order, 1)


def _faiss_top_k(q: np.ndarray, collection: np.ndarray, k: int, chunk_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact search with faiss's flat inner-product index, filled chunk by chunk with normalised rows."""
    try:
        import faiss
    except ImportError as exc:
        from .errors import install_hint

        raise ImportError(f"top_k(use_faiss=True) needs faiss: {install_hint('search')}") from exc

    index = faiss.IndexFlatIP(collection.shape[1])
    for start in range(0, len(collection), chunk_rows):
        index.add(np.ascontiguousarray(normalize(collection[start : start + chunk_rows])))
    scores, rows = index.search(np.ascontiguousarray(q), k)
    return rows.astype(np.int64), scores
