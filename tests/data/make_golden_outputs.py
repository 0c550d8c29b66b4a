"""Generate tests/data/golden_outputs-KERNELS.npz: the shipped model's outputs, to hold refactors to bit-identical results.

The bits depend on the CPU kernels ONNX Runtime and torch pick (AVX2 or AVX-512: the same code differs by up to
5e-5), so there is one file per kind (`kernels()`), each written on a machine of that kind. tests/test_golden_outputs.py
recomputes every array and compares bytes with this machine's kind's file, or, on a kind without a file, compares
within 1e-4 with every file.

Regenerate only when the shipped weights or the frontend change on purpose (a new release), never to make a
refactor pass, and then on each kind of machine (a file of another kind left behind would fail there):
    python tests/data/make_golden_outputs.py
"""

import platform
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def kernels() -> str:
    """The vector instructions the CPU kernels dispatch on: 'avx512' (AVX-512 F), 'avx2', or the machine name."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.machine().lower() or "unknown"
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else platform.machine().lower()


def path(kind: str) -> Path:
    return HERE / f"golden_outputs-{kind}.npz"
TORCH_THREADS = 1  # torch splits work by thread count; ONNX Runtime runs with its default (all cores; on AVX-512 its sums follow that too)


def clips() -> dict[str, tuple[np.ndarray, int]]:
    """A resampled noisy chirp and a clip shorter than one window."""
    rng = np.random.default_rng(20261207)
    t = np.arange(int(22050 * 2.7)) / 22050
    chirp = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.05 * rng.standard_normal(t.size)
    short = 0.2 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
    return {"chirp": (chirp.astype(np.float32), 22050), "short": (short.astype(np.float32), 16000)}


def compute(backend: str) -> dict[str, np.ndarray]:
    from audioembed import Embedder

    e = Embedder(backend=backend, num_threads=TORCH_THREADS if backend == "torch" else None)
    out = {}
    for name, (x, sr) in clips().items():
        out[f"{backend}/{name}"] = e.embed(x, sr=sr)
        fr = e.embed_frames(x, sr=sr)
        out[f"{backend}/{name}/frames"] = fr.embeddings
        out[f"{backend}/{name}/timestamps"] = fr.timestamps
    return out


if __name__ == "__main__":
    import audioembed

    arrays = {**compute("onnx"), **compute("torch")}
    out = path(kernels())
    np.savez_compressed(out, **arrays, version=np.array(audioembed.__version__), kernels=np.array(kernels()))
    print(f"wrote {out.name}: {len(arrays)} arrays for audioembed {audioembed.__version__}")
