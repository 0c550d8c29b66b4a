"""Measurements that need a fresh process: start-up time and peak memory. Prints one JSON line.

python benchmarks/fresh_process.py startup MODEL FILE
python benchmarks/fresh_process.py memory MODEL FILE clip|frames|frames-in-memory
python benchmarks/fresh_process.py gemm [N]

frames is what `audioembed embed --frames` does (frames streamed to a .npy); frames-in-memory is
Embedder.embed_frames, which returns the frames and so holds them.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def peak_rss_mb() -> float:
    """This process's high-water RSS. VmHWM, because ru_maxrss survives exec on Linux (it would report the parent's)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux, bytes on macOS


def startup(model: str, path: str) -> dict:
    t0 = time.perf_counter()
    import audioembed

    t1 = time.perf_counter()
    heavy_after_import = sorted(m for m in ("torch", "onnxruntime", "sklearn") if m in sys.modules)
    embedder = audioembed.Embedder(model, backend="onnx")
    t2 = time.perf_counter()
    vector = embedder.embed(path)
    t3 = time.perf_counter()
    return {
        "import_s": t1 - t0,
        "heavy_modules_after_import": heavy_after_import,
        "torch_imported_at_end": "torch" in sys.modules,
        "load_s": t2 - t1,
        "first_embed_s": t3 - t2,
        "first_embedding_s": t3 - t1,
        "dim": int(vector.shape[0]),
    }


def memory(model: str, path: str, mode: str) -> dict:
    import audioembed

    if mode == "frames":  # as `audioembed embed --frames` writes them: streamed to NAME.frames.npy
        return cli_frames(model, path)
    embedder = audioembed.Embedder(model, backend="onnx")
    before = peak_rss_mb()
    t0 = time.perf_counter()
    if mode == "frames-in-memory":  # Embedder.embed_frames returns them, so it holds them all
        out = embedder.embed_frames(path).embeddings
    else:
        out = embedder.embed(path)
    return {
        "mode": mode,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_load_mb": before,
        "seconds": time.perf_counter() - t0,
        "output_shape": list(out.shape),
        "output_mb": out.nbytes / 2**20,
    }


def cli_frames(model: str, path: str) -> dict:
    import tempfile
    from pathlib import Path

    import numpy as np

    from audioembed.cli import app

    before = peak_rss_mb()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        app(["embed", path, "-o", out, "-m", model, "--backend", "onnx", "--frames", "-q"], standalone_mode=False)
        frames = np.load(Path(out) / (Path(path).stem + ".frames.npy"), mmap_mode="r")
        shape, nbytes = list(frames.shape), frames.nbytes
        del frames
    return {
        "mode": "frames",
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_import_mb": before,
        "seconds": time.perf_counter() - t0,
        "output_shape": shape,
        "output_mb": nbytes / 2**20,
    }


def gemm(n: str = "2048") -> dict:
    """numpy's float32 GEMM as this process's environment makes OpenBLAS load it: best of 3 one-second bursts."""
    import numpy as np
    from threadpoolctl import threadpool_info

    size = int(n)
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = 0.0
    for _ in range(3):
        t0, calls = time.perf_counter(), 0
        while (elapsed := time.perf_counter() - t0) < 1.0:
            a @ b
            calls += 1
        best = max(best, calls * 2.0 * size**3 / elapsed)
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"gflops": best / 1e9, "architecture": blas[0].get("architecture") if blas else None}


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    result = {"startup": startup, "memory": memory, "gemm": gemm}[kind](*args)
    print(json.dumps(result))
