"""Top-k search: the numpy path (blocks) against faiss's exact index, by collection size.

    python benchmarks/search.py [--dim 512] [--queries 10] [--sizes 10000 100000 300000]

Random unit vectors (the speed does not depend on their values); each figure is the best of 3
calls, faiss including building its index (what `audioembed search` pays on every run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from audioembed.search import top_k


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((a.queries, a.dim)).astype(np.float32)
    print(f"| vectors | numpy | faiss (index built per call) | same neighbours |\n|---|---|---|---|")
    for n in a.sizes:
        collection = rng.standard_normal((n, a.dim)).astype(np.float32)
        t_np = best_of(lambda: top_k(queries, collection, a.k, use_faiss=False))
        t_faiss = best_of(lambda: top_k(queries, collection, a.k, use_faiss=True))
        same = np.array_equal(top_k(queries, collection, a.k, use_faiss=False)[0], top_k(queries, collection, a.k, use_faiss=True)[0])
        print(f"| {n:,} × {a.dim} | {t_np * 1000:.0f} ms | {t_faiss * 1000:.0f} ms | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
