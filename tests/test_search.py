"""Similarity and search: the numpy helpers, faiss against numpy, `audioembed search`, and real structure."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioembed import Embedder, IndexFormatError, cosine_similarity, search, top_k
from audioembed.cli import app
from audioembed.index import load_index

from conftest import noisy, tone

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "audioembed-base"
runner = CliRunner()


def test_cosine_similarity_values_and_shapes():
    assert cosine_similarity([1, 0], [1, 1]) == pytest.approx(1 / np.sqrt(2))
    assert cosine_similarity([2, 0], [-3, 0]) == pytest.approx(-1.0)
    a, b = np.array([[1.0, 0], [0, 2]]), np.array([[0, 1.0], [3, 0], [1, 1]])
    expected = np.array([[0, 1, 1 / np.sqrt(2)], [1, 0, 1 / np.sqrt(2)]])
    np.testing.assert_allclose(cosine_similarity(a, b), expected, atol=1e-6)
    np.testing.assert_allclose(cosine_similarity(a[0], b), expected[0], atol=1e-6)
    assert cosine_similarity([0, 0], [1, 0]) == 0.0  # a zero vector is similar to nothing, not NaN
    with pytest.raises(ValueError, match="dimensions differ"):
        cosine_similarity([1, 0, 0], [1, 0])


def _exact(queries, collection, k):
    sims = cosine_similarity(queries, collection)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, 1)


class CountingRows:
    """A collection that records the largest block of rows read from it at once."""

    def __init__(self, array):
        self.array, self.largest = array, 0
        self.ndim, self.shape = array.ndim, array.shape

    def __len__(self):
        return len(self.array)

    def __getitem__(self, item):
        block = self.array[item]
        self.largest = max(self.largest, len(block))
        return block


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_top_k_matches_a_full_sort_in_bounded_blocks(chunk_rows, monkeypatch):
    monkeypatch.setattr(search, "QUERY_ROWS", 2)  # 5 queries in groups of 2, 2 and 1
    rng = np.random.default_rng(0)
    collection = rng.standard_normal((300, 16)).astype(np.float32) * rng.uniform(0.1, 10, (300, 1)).astype(np.float32)
    queries = rng.standard_normal((5, 16)).astype(np.float32)
    counted = CountingRows(collection)
    rows, scores = top_k(queries, counted, k=12, chunk_rows=chunk_rows, use_faiss=False)
    expected_rows, expected_scores = _exact(queries, collection, 12)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert counted.largest == min(chunk_rows, 300), "the collection must be read in blocks of at most chunk_rows"
    one_rows, _ = top_k(queries[0], collection, k=500)  # one query; k larger than the collection
    assert one_rows.shape == (1, 300) and set(one_rows[0]) == set(range(300))
    np.testing.assert_array_equal(one_rows[0, :12], expected_rows[0])


def test_faiss_matches_the_numpy_path():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    collection = rng.standard_normal((5000, 32)).astype(np.float32)
    queries = rng.standard_normal((20, 32)).astype(np.float32)
    rows_np, scores_np = top_k(queries, collection, k=10, use_faiss=False)
    rows_faiss, scores_faiss = top_k(queries, collection, k=10, use_faiss=True, chunk_rows=999)
    np.testing.assert_array_equal(rows_faiss, rows_np)
    np.testing.assert_allclose(scores_faiss, scores_np, atol=1e-5)


def test_embed_normalize(tiny_model_dir):
    e = Embedder(tiny_model_dir, backend="onnx")
    clips = [tone(440), noisy(seconds=2.0)]
    raw, unit = e.embed(clips, sr=16000), e.embed(clips, sr=16000, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit * np.linalg.norm(raw, axis=1, keepdims=True), raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(e.embed(tone(440), sr=16000, normalize=True)), 1.0, atol=1e-6)


@pytest.fixture
def collection(tmp_path):
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    for name, freq in [("low.wav", 220), ("sub/mid.wav", 880), ("high.wav", 3520)]:
        sf.write(root / name, tone(freq, 16000, 2.0), 16000)
    sf.write(root / "sub" / "noise.flac", noisy(16000, 2.0, seed=3), 16000)
    return root


@pytest.mark.parametrize("stack", [False, True])
def test_search_cli_finds_the_query_first(collection, tiny_model_dir, tmp_path, stack):
    out = tmp_path / "index"
    args = ["embed", str(collection), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "onnx", "-q"]
    assert runner.invoke(app, args + (["--stack"] if stack else [])).exit_code == 0
    query = tmp_path / "query.wav"
    sf.write(query, tone(880, 16000, 2.0), 16000)  # the same audio as sub/mid.wav
    result = runner.invoke(app, ["search", str(query), "--index", str(out), "-k", "3", "--json",
                                 "-m", str(tiny_model_dir), "--backend", "onnx"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    assert item["query"] == str(query) and len(item["neighbours"]) == 3
    best = item["neighbours"][0]
    assert best["name"] == (str(collection / "sub" / "mid.wav") if stack else "sub/mid.npy")
    assert best["score"] == pytest.approx(1.0, abs=1e-5)
    index = load_index(out)
    names = [n["name"] for n in item["neighbours"]]
    q = Embedder(tiny_model_dir, backend="onnx").embed(query)
    expected = np.argsort(-cosine_similarity(q, np.asarray(index.vectors)))[:3]
    assert names == [index.names[i] for i in expected]


def test_search_cli_npy_query_text_output_and_errors(collection, tiny_model_dir, tmp_path):
    out = tmp_path / "index"
    runner.invoke(app, ["embed", str(collection), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "onnx", "-q"])
    result = runner.invoke(app, ["search", str(out / "high.npy"), "--index", str(out), "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(out / "high.npy") and lines[1].split() == ["1", "1.0000", "high.npy"] and len(lines) == 3
    result = runner.invoke(app, ["search", str(collection), "--index", str(out), "-k", "1", "--json",
                                 "-m", str(tiny_model_dir), "--backend", "onnx"])  # a folder of queries
    found = {Path(item["query"]).relative_to(collection).with_suffix(".npy").as_posix(): item["neighbours"][0]["name"]
             for item in json.loads(result.stdout)}
    assert found == {name: name for name in ["high.npy", "low.npy", "sub/mid.npy", "sub/noise.npy"]}
    np.save(tmp_path / "wrong.npy", np.ones(7, np.float32))
    result = runner.invoke(app, ["search", str(tmp_path / "wrong.npy"), "--index", str(out)])
    assert result.exit_code == 1 and "32-d embeddings" in result.output
    result = runner.invoke(app, ["search", str(out / "high.npy"), "--index", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no such index" in result.output
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFormatError, match="no embeddings"):
        load_index(tmp_path / "empty")


def test_a_tree_of_vectors_from_two_models_is_an_index_error(tmp_path):
    """128-d and 512-d files in one tree: named as such, not numpy's stack error."""
    np.save(tmp_path / "a.npy", np.ones(128, np.float32))
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "b.npy", np.ones(512, np.float32))
    with pytest.raises(IndexFormatError, match=r"different dimensions \[128, 512\]"):
        load_index(tmp_path)


def _chance_free_ranks(vectors):
    """For each half, the rank (1 = nearest) of the other half of its recording among all other halves."""
    rows, _ = top_k(vectors, vectors, k=len(vectors))
    return np.array([list(r[r != i]).index(i ^ 1) + 1 for i, r in enumerate(rows)])


def _halves(clips, rates):
    pieces, piece_rates = [], []
    for x, sr in zip(clips, rates):
        pieces += [x[: len(x) // 2], x[len(x) // 2 :]]
        piece_rates += [sr, sr]
    return pieces, piece_rates


def test_halves_of_a_shipped_recording_find_each_other():
    """Real audio (examples/, CC0), the shipped model: the partner half ranks well above chance."""
    files = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".flac", ".wav"))
    decoded = [sf.read(p, dtype="float32") for p in files]
    pieces, rates = _halves([x for x, _ in decoded], [sr for _, sr in decoded])
    ranks = _chance_free_ranks(Embedder(SHIPPED, backend="onnx").embed(pieces, sr=rates))
    n_others = len(pieces) - 1
    chance = (n_others + 1) / 2  # mean rank of a partner placed at random: 5 of 9
    assert ranks.mean() <= chance - 1.5, f"partner ranks {ranks.tolist()} (chance: mean {chance})"
    assert (ranks == 1).sum() >= 3  # chance: 10/9 expected at rank 1


def _recording(rng, sr=16000, seconds=4.0):
    """A generated 'recording': a harmonic tone, a noise band and an optional rhythm, each random."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = rng.uniform(80, 1000)
    x = sum(rng.uniform(0.2, 1) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) for h in range(1, rng.integers(2, 9)))
    spectrum = np.fft.rfft(rng.standard_normal(len(t)))
    lo, hi = sorted(rng.uniform(100, 7000, 2))
    freqs = np.fft.rfftfreq(len(t), 1 / sr)
    spectrum[(freqs < lo) | (freqs > hi)] = 0
    band = np.fft.irfft(spectrum, len(t))
    x = x + rng.uniform(0, 0.6) * band / (band.std() + 1e-9)
    if rng.random() < 0.5:
        x = x * (np.sin(2 * np.pi * rng.uniform(0.5, 8) * t) > 0)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def test_halves_of_generated_recordings_find_each_other():
    rng = np.random.default_rng(0)
    pieces, rates = _halves([_recording(rng) for _ in range(20)], [16000] * 20)
    ranks = _chance_free_ranks(Embedder(SHIPPED, backend="onnx").embed(pieces, sr=rates))
    assert (ranks == 1).mean() >= 0.8, f"partner ranks {ranks.tolist()} (chance at rank 1: 1/39)"


def test_tree_index_skips_hidden_folders_and_frames(tmp_path):
    """An unfinished --stack run keeps its parts in OUT/.audioembed-parts/: not a tree index's vectors."""
    np.save(tmp_path / "a.npy", np.ones(4, np.float32))
    np.save(tmp_path / "a.frames.npy", np.ones((3, 4), np.float32))
    np.save(tmp_path / "a.timestamps.npy", np.arange(3.0))
    (tmp_path / ".audioembed-parts").mkdir()
    np.save(tmp_path / ".audioembed-parts" / "b.npy", np.ones(4, np.float32))
    index = load_index(tmp_path)
    assert index.names == ["a.npy"] and index.vectors.shape == (1, 4)
