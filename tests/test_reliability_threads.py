"""One Embedder shared by several threads gives the same results as serial use, errors included."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from audioembed import Embedder
from audioembed.errors import AudioError

from conftest import noisy

N_THREADS, ROUNDS = 4, 2


def workloads(tmp_path):
    """Per thread, its own inputs: a mix-up between threads would show as a wrong vector, not rounding."""
    jobs = []
    for t in range(N_THREADS):
        path = tmp_path / f"t{t}.wav"
        sf.write(path, noisy(22050, 0.5 + 0.3 * t, seed=100 + t), 22050)
        arrays = [noisy(16000, 0.1 + 0.6 * k * (t % 3 + 1), seed=10 * t + k) for k in range(3)]
        jobs.append([path, *arrays])
    return jobs


def run(e: Embedder, items) -> tuple[np.ndarray, list[np.ndarray], str]:
    rates = [None] + [16000] * (len(items) - 1)
    vectors = np.stack([e.embed(x, sr=r) for x, r in zip(items, rates)])
    frames = [f.embeddings for f in e.embed_frames(items[1:], sr=16000)]
    try:
        e.embed([items[1], np.full(100, np.nan, np.float32)], sr=16000)
        error = ""
    except AudioError as exc:
        error = str(exc)
    return vectors, frames, error


@pytest.mark.parametrize("backend, batch_size, atol", [("onnx", 1, 0.0), ("onnx", 4, 1e-5), ("torch", 4, 1e-5)])
def test_shared_embedder_matches_serial_use(tiny_model_dir, tmp_path, backend, batch_size, atol):
    e = Embedder(tiny_model_dir, backend=backend, batch_size=batch_size, num_workers=2, num_threads=1)
    jobs = workloads(tmp_path)
    serial = [run(e, items) for items in jobs]
    with ThreadPoolExecutor(N_THREADS) as pool:
        concurrent = list(pool.map(lambda i: run(e, jobs[i % N_THREADS]), range(N_THREADS * ROUNDS)))
    for i, (vectors, frames, error) in enumerate(concurrent):
        want_vectors, want_frames, want_error = serial[i % N_THREADS]
        np.testing.assert_allclose(vectors, want_vectors, rtol=0, atol=atol)
        for got, want in zip(frames, want_frames):
            np.testing.assert_allclose(got, want, rtol=0, atol=atol)
        assert error == want_error and "NaN" in error
    distinct = np.stack([s[0][0] for s in serial])
    assert np.abs(distinct[:, None] - distinct[None]).max() > 100 * max(atol, 1e-6)  # the check has teeth
