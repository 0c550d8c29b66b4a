"""Similarity and search: the numpy helpers, faiss against numpy, `audioembed search`, and real structure."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioembed import Embedder, IndexFormatError, cosine_similarity, search, top_k
from audioembed.cli import app
from audioembed.outputs.index import load_index

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
    assert best["name"] == os.path.abspath(collection / "sub" / "mid.wav")  # the audio, for a tree index too
    assert best["score"] == pytest.approx(1.0, abs=1e-5)
    index = load_index(out)
    names = [n["name"] for n in item["neighbours"]]
    q = Embedder(tiny_model_dir, backend="onnx").embed(query)
    expected = np.argsort(-cosine_similarity(q, np.asarray(index.vectors)))[:3]
    assert names == [index.label(i) for i in expected]


def test_search_cli_npy_query_text_output_and_errors(collection, tiny_model_dir, tmp_path):
    out = tmp_path / "index"
    runner.invoke(app, ["embed", str(collection), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "onnx", "-q"])
    result = runner.invoke(app, ["search", str(out / "high.npy"), "--index", str(out), "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(out / "high.npy") and len(lines) == 3
    assert lines[1].split() == ["1", "1.0000", os.path.abspath(collection / "high.wav")]  # the audio it came from
    result = runner.invoke(app, ["search", str(collection), "--index", str(out), "-k", "1", "--json",
                                 "-m", str(tiny_model_dir), "--backend", "onnx"])  # a folder of queries
    found = {item["query"]: item["neighbours"][0]["name"] for item in json.loads(result.stdout)}
    assert len(found) == 4
    assert found and found == {q: os.path.abspath(q) for q in found}  # each finds the audio it is
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


# Ties, extremes and non-finite rows ---------------------------------------------------------------------------

TIED = [3, 7, 8, 9, 20, 33, 41, 50, 51, 52, 59]  # 11 identical rows, spread over blocks of any size


def _tied_collection():
    rng = np.random.default_rng(5)
    collection = rng.standard_normal((60, 8)).astype(np.float32)
    v = rng.standard_normal(8).astype(np.float32)
    collection[TIED] = v * 3  # the same direction: each scores exactly as the others against any query
    return collection, v


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 4, 5, 7, 8, 11, 16, 59, 60, 1000])
def test_tied_rows_go_to_the_lowest_row_numbers_whatever_the_block_size(chunk_rows):
    collection, v = _tied_collection()
    rows, scores = top_k(v, collection, k=3, chunk_rows=chunk_rows)
    assert rows.tolist() == [[3, 7, 8]]
    np.testing.assert_allclose(scores, 1.0, atol=1e-6)
    rows, _ = top_k(np.stack([v, -v]), collection, k=60, chunk_rows=chunk_rows)
    assert rows[0].tolist()[:11] == TIED  # every tie, lowest row first
    assert rows[1].tolist()[-11:] == TIED and sorted(rows[1]) == list(range(60))  # -v: the tied rows score -1, last


@pytest.mark.parametrize("k", [1, 3, 5, 11, 12])
def test_faiss_breaks_ties_as_numpy_does(k):
    pytest.importorskip("faiss")
    collection, v = _tied_collection()
    queries = np.stack([v, collection[0], -v] * 8)  # 24 queries: faiss's BLAS path (>= 20) as well as its own
    expected = top_k(queries, collection, k=k)
    for chunk_rows in (1, 7, 60):
        got = top_k(queries, collection, k=k, use_faiss=True, chunk_rows=chunk_rows)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_allclose(got[1], expected[1], atol=1e-5)
    assert expected[0][0].tolist()[:11] == TIED[:k]


def test_faiss_keeps_the_lowest_of_rows_it_cannot_tell_apart():
    """Near-duplicates (silent clips with a little dither): equal cosines once rounded to float32, but faiss's own
    float32 rounding ranks them by noise (rows 282, 94, 59, 52 here); the answer is still the lowest rows."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    v = rng.standard_normal(64)
    collection = (v + rng.standard_normal((300, 64)) * 1e-5).astype(np.float32)
    assert np.unique(top_k(v, collection, k=300)[1]).tolist() == [1.0]  # all tied, exactly
    for queries in (v, np.repeat(v[None], 24, 0)):
        rows, _ = top_k(queries, collection, k=4, use_faiss=True)
        assert (rows == [0, 1, 2, 3]).all()


def test_extreme_vectors_have_a_cosine():
    assert cosine_similarity([3e19, 4e19], [3e19, 4e19]) == pytest.approx(1.0, abs=1e-9)  # float32 norm overflows
    assert cosine_similarity([1e-30, 1e-30], [1e-30, 1e-30]) == pytest.approx(1.0, abs=1e-9)  # and underflows
    assert cosine_similarity([3e38, -3e38], [1, 1]) == pytest.approx(0.0, abs=1e-9)
    assert cosine_similarity(np.array([1e200, 1e200]), np.array([1e200, 1e200])) == pytest.approx(1.0, abs=1e-9)
    big = np.array([[3e19, 4e19], [1e-30, 1e-30], [1e-45, 0], [-3e38, 0]], np.float32)
    rows, scores = top_k(big, big, k=1, chunk_rows=2)
    assert rows[:, 0].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-6)


@pytest.mark.parametrize("use_faiss", [False, True])
def test_rows_with_nan_or_inf_are_never_returned(use_faiss):
    if use_faiss:
        pytest.importorskip("faiss")
    rng = np.random.default_rng(2)
    collection = rng.standard_normal((9, 4)).astype(np.float32)
    collection[[1, 4]] = np.nan
    collection[6, 2] = np.inf
    rows, scores = top_k(collection[[0, 2]], collection, k=20, chunk_rows=4, use_faiss=use_faiss)
    assert rows.shape == (2, 6) and sorted(rows[0]) == [0, 2, 3, 5, 7, 8]  # no -1, no NaN row
    assert rows[:, 0].tolist() == [0, 2] and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="query 1 holds NaN"):
        top_k(collection[[0, 1]], collection, k=2, use_faiss=use_faiss)


# Hostile and damaged index files -----------------------------------------------------------------------------

def _npy_header(shape, descr="<f4"):
    import io

    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    return f.getvalue()


@pytest.mark.parametrize("case", ["npz", "str", "structured", "datetime", "object", "huge", "short", "fifo"])
def test_hostile_tree_files_are_index_errors(tmp_path, case):
    np.save(tmp_path / "good.npy", np.ones(4, np.float32))
    bad = tmp_path / "x.npy"
    if case == "npz":
        with open(bad, "wb") as f:
            np.savez(f, a=np.ones(4))
    elif case == "str":
        np.save(bad, np.array(["a", "b", "c", "d"]))
    elif case == "structured":
        np.save(bad, np.zeros(4, dtype=[("a", "<f4"), ("b", "<i4")]))
    elif case == "datetime":
        np.save(bad, np.arange(4).astype("datetime64[s]"))
    elif case == "object":
        np.save(bad, np.array([1.0, None, 2.0, 3.0], dtype=object), allow_pickle=True)
    elif case == "huge":  # 10^12 float32 claimed in a 150-byte file: refused before allocating 4 TB
        bad.write_bytes(_npy_header((10**12,)) + b"\0" * 16)
    elif case == "short":
        bad.write_bytes(_npy_header((4,)) + b"\0" * 15)
    else:
        os.mkfifo(bad)  # opening it for reading would wait for a writer forever
    expected = {"npz": ".npz archive", "str": "not numbers", "structured": "not numbers", "datetime": "not numbers",
                "object": "not numbers", "huge": "claims shape", "short": "claims shape", "fifo": "not a regular file"}
    caught = []
    reader = threading.Thread(target=lambda: caught.append(_raised(load_index, tmp_path)), daemon=True)
    reader.start()
    reader.join(20)
    if reader.is_alive():  # stuck opening the FIFO: let it go, then fail
        os.close(os.open(bad, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"load_index hung on {case}")
    assert isinstance(caught[0], IndexFormatError), caught
    assert expected[case] in str(caught[0]) and "x.npy" in str(caught[0])


def _raised(f, *args):
    try:
        f(*args)
    except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
        return exc


def test_hostile_stack_files_are_index_errors(tmp_path):
    out = tmp_path / "stack"
    out.mkdir()
    (out / "embeddings.npy").write_bytes(_npy_header((10**6, 10**6)) + b"\0" * 64)
    (out / "index.csv").write_text("row,path\n0,a.wav\n")
    with pytest.raises(IndexFormatError, match="claims shape"):
        load_index(out)
    np.save(out / "embeddings.npy", np.ones((1, 4), np.float32))
    (out / "index.csv").write_text("row,path\n0," + "a" * 131073 + "\n")  # over csv's field size limit
    with pytest.raises(IndexFormatError, match="index.csv|field"):
        load_index(out)
    (out / "index.csv").write_text("row,path\n0,a.wav\n")
    assert load_index(out).names == ["a.wav"]


def test_the_old_import_paths_are_the_modules_themselves():
    """`audioembed.index` and `audioembed.parquet` (their homes before outputs/) import as the same modules, so a
    patch through either path reaches the code; `audioembed.outputs` keeps the names it held as one module."""
    import audioembed.index
    import audioembed.outputs.index
    import audioembed.outputs.parquet
    import audioembed.parquet
    from audioembed import outputs

    assert audioembed.index is audioembed.outputs.index and audioembed.index.load_index is load_index
    assert audioembed.parquet is audioembed.outputs.parquet
    assert all(hasattr(outputs, name) for name in outputs.__all__)


def test_parquet_lists_of_mixed_length_are_an_index_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from audioembed.outputs import parquet

    t = pa.table({"path": ["a.wav", "b.wav"], "embedding": pa.array([[1.0, 2.0], [1.0]], pa.list_(pa.float32())),
                  "error": pa.array([None, None], pa.string())})
    record = {"model": "org/m", "revision": "v1", "weights_sha256": {}, "dim": 2}
    parquet.write_shard(t, tmp_path, parquet.shard_name("ab12", 0), record)  # named and marked as embed-cluster's
    with pytest.raises(IndexFormatError, match="fixed-size list"):
        load_index(tmp_path)


def test_a_tree_with_a_foreign_parquet_beside_it_is_still_a_tree(tmp_path):
    """Only files named as embed-cluster names its shards make a folder a Parquet index: a user's own .parquet, or
    a FIFO so named (opening it would block), beside a tree of .npy leaves the tree searchable."""
    _tree(tmp_path, {"a.npy": [1.0, 0.0], "b.npy": [0.0, 1.0]})
    (tmp_path / "notes.parquet").write_bytes(b"not ours")
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.parquet")
    index = load_index(tmp_path)
    assert index.names == ["a.npy", "b.npy"] and index.vectors.shape == (2, 2)


# The command: names, JSON, NaN, models, queries ---------------------------------------------------------------

def _tree(root, vectors):
    root.mkdir(parents=True, exist_ok=True)
    for name, v in vectors.items():
        np.save(root / os.fsdecode(name), np.asarray(v, np.float32))
    return root


def _run_strict_utf8(args):
    """The CLI in a child whose stdout is strict UTF-8, as a terminal under a UTF-8 locale."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run([sys.executable, "-m", "audioembed.cli", *args], capture_output=True, env=env, timeout=120)


def test_search_escapes_names_for_the_terminal_and_survives_strict_utf8(tmp_path):
    red, raw = "a\x1b[31mred\x9b2J.npy", b"b\xffc.npy"
    index = _tree(tmp_path / "index", {red: [1, 0, 0], raw: [0.9, 0.1, 0], "café.npy": [0, 1, 0]})
    np.save(tmp_path / "q.npy", np.array([1, 0, 0], np.float32))
    text = _run_strict_utf8(["search", str(tmp_path / "q.npy"), "-i", str(index), "-k", "3"])
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode("utf-8")
    assert "\x1b" not in out and "\x9b" not in out
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["a\\x1b[31mred\\x9b2J.npy", "b\\xffc.npy", "café.npy"]
    js = _run_strict_utf8(["search", str(tmp_path / "q.npy"), "-i", str(index), "-k", "3", "--json"])
    assert js.returncode == 0, js.stderr
    assert b"\x1b" not in js.stdout and b"\xc2\x9b" not in js.stdout
    names = [n["name"] for n in json.loads(js.stdout)[0]["neighbours"]]
    assert names == [red, os.fsdecode(raw), "café.npy"]  # exact: json.loads gives back the names, bytes included
    assert os.fsencode(names[1]) == raw


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_search_json_is_valid_with_nan_and_inf_rows(tmp_path):
    index = _tree(tmp_path / "index", {"a.npy": [1, 0], "b.npy": [np.nan, 1], "c.npy": [np.inf, 0], "d.npy": [3e38, 3e38],
                                       "e.npy": [1e-40, 1e-40]})
    np.save(tmp_path / "q.npy", np.array([1, 1], np.float32))
    np.save(tmp_path / "nan.npy", np.array([np.nan, 1], np.float32))
    result = runner.invoke(app, ["search", str(tmp_path / "q.npy"), str(tmp_path / "nan.npy"), "-i", str(index), "--json"])
    assert result.exit_code == 1  # the NaN query failed, named
    (item,) = _strict_json(result.stdout)
    assert [(n["name"], n["score"]) for n in item["neighbours"]] == [("d.npy", 1.0), ("e.npy", 1.0), ("a.npy", 0.707107)]
    assert "nan.npy: its vector holds NaN or inf values" in result.stderr
    assert "b.npy holds NaN or inf values; left out" in result.stderr and "c.npy holds NaN" in result.stderr


def test_search_several_queries_in_one_npy_and_exclude_self(tmp_path):
    vectors = {"a.npy": [1, 0, 0], "b.npy": [0.9, 0.1, 0], "c.npy": [0, 1, 0], "d.npy": [0.1, 0.9, 0.1]}
    index = _tree(tmp_path / "index", vectors)
    stack = np.array(list(vectors.values()), np.float32)
    np.save(tmp_path / "many.npy", stack)
    result = runner.invoke(app, ["search", str(tmp_path / "many.npy"), "-i", str(index), "-k", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert [(i["query"], i["neighbours"][0]["name"]) for i in json.loads(result.stdout)] == [
        (f"{tmp_path / 'many.npy'}[{i}]", name) for i, name in enumerate(vectors)]
    result = runner.invoke(app, ["search", str(index / "a.npy"), str(index / "c.npy"), "-i", str(index), "-k", "2",
                                 "--json", "--exclude-self"])
    assert [[n["name"] for n in i["neighbours"]] for i in json.loads(result.stdout)] == [["b.npy", "d.npy"], ["d.npy", "b.npy"]]


def test_search_exclude_self_on_a_stack_its_matrix_and_audio(collection, tiny_model_dir, tmp_path):
    out = tmp_path / "index"
    args = ["embed", str(collection), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "onnx", "-q", "--stack"]
    assert runner.invoke(app, args).exit_code == 0
    index = load_index(out)
    result = runner.invoke(app, ["search", str(out / "embeddings.npy"), "-i", str(out), "-k", "3", "--json", "--exclude-self"])
    report = json.loads(result.stdout)
    assert len(report) == 4 and all(len(i["neighbours"]) == 3 for i in report)
    for row, item in enumerate(report):
        assert index.names[row] not in [n["name"] for n in item["neighbours"]]
    query = collection / "sub" / "mid.wav"
    base = ["search", str(query), "-i", str(out), "-k", "4", "--json", "-m", str(tiny_model_dir), "--backend", "onnx"]
    with_self = [n["name"] for n in json.loads(runner.invoke(app, base).stdout)[0]["neighbours"]]
    without = [n["name"] for n in json.loads(runner.invoke(app, base + ["--exclude-self"]).stdout)[0]["neighbours"]]
    assert with_self[0] == str(query) and without == with_self[1:]


def _rewrite_record(out, **changes):
    """Change the model record that `audioembed embed` wrote in OUT/audioembed.json, keeping the file's shape."""
    meta = json.loads((out / "audioembed.json").read_text())
    meta["model"] = {**meta["model"], **changes}
    (out / "audioembed.json").write_text(json.dumps(meta))


def test_search_refuses_an_index_written_by_another_model(collection, tiny_model_dir, tmp_path):
    """The record is the one `embed` writes (read through outputs.read_model_record), not a hand-made file."""
    out = tmp_path / "index"
    assert runner.invoke(app, ["embed", str(collection), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "onnx",
                               "-q"]).exit_code == 0
    record = Embedder(tiny_model_dir, backend="onnx").model_record()
    from audioembed import outputs

    assert outputs.read_model_record(out) == json.loads(json.dumps(record))
    query = ["search", str(collection / "high.wav"), "-i", str(out), "-k", "1", "-m", str(tiny_model_dir), "--backend", "onnx"]
    same = runner.invoke(app, query)
    assert same.exit_code == 0 and "note" not in same.stderr and "high.wav" in same.stdout
    _rewrite_record(out, model="/elsewhere/tiny")  # the same weights from a moved folder: the same model
    assert runner.invoke(app, query).exit_code == 0
    _rewrite_record(out, model="someone/other-model", weights_sha256={f: "0" * 64 for f in record["weights_sha256"]})
    refused = runner.invoke(app, query)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert "written by someone/other-model" in refused.stderr and "--model someone/other-model" in refused.stderr
    (out / "audioembed.json").unlink()  # an index from an older audioembed: a note, and the search runs
    old = runner.invoke(app, query)
    assert old.exit_code == 0 and "does not record which model" in old.stderr and "high.npy" in old.stdout  # no sources either


def test_search_reads_the_model_record_of_parquet_shards(tmp_path):
    pytest.importorskip("pyarrow")
    from audioembed.outputs import parquet

    record = {"model": "org/m", "revision": "v1", "weights_sha256": {"model.onnx": "ab" * 32}, "dim": 2}
    for i, path in enumerate(["a.wav", "b.wav"]):  # shards as embed-cluster writes them: named and marked
        t = parquet.table(2, [{"path": path, "embedding": [1.0, float(i)], "sr": 16000, "seconds": 1.0}], record=record)
        parquet.write_shard(t, tmp_path, parquet.shard_name("ab12", i), record)
    assert load_index(tmp_path).model == record
    parquet.write_shard(t, tmp_path, parquet.shard_name("ab12", 1), {**record, "revision": "v2"})
    with pytest.raises(IndexFormatError, match="different models"):
        load_index(tmp_path)


def test_search_help_says_what_a_score_means():
    """The range in --help is measured here: the shipped model on the different recordings of examples/."""
    from audioembed.search_command import UNRELATED_SCORES

    files = sorted(str(p) for p in (ROOT / "examples").iterdir() if p.suffix in (".flac", ".wav"))
    sims = cosine_similarity(*[Embedder(SHIPPED, backend="onnx").embed(files)] * 2)
    pairs = sims[np.triu_indices(len(files), 1)]
    low, high = UNRELATED_SCORES
    assert low <= pairs.min() and pairs.max() <= high and pairs.max() - pairs.min() > (high - low) / 2
    help_text = " ".join(runner.invoke(app, ["search", "--help"], terminal_width=200).stdout.split())
    assert "cosine similarities" in help_text and f"{low:.2f} to {high:.2f}" in help_text and "--exclude-self" in help_text


def test_search_on_a_tree_index_names_the_source_audio(collection, tiny_model_dir, tmp_path):
    """A tree index prints the audio file each .npy came from (recorded by embed), as a stack index does; an index
    written before sources were recorded prints the .npy path."""
    out = tmp_path / "tree"
    assert runner.invoke(app, ["embed", str(collection), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "onnx",
                               "-q"]).exit_code == 0
    query = ["search", str(collection / "high.wav"), "-i", str(out), "-k", "2", "-m", str(tiny_model_dir), "--backend",
             "onnx", "--json"]
    found = json.loads(runner.invoke(app, query).stdout)[0]["neighbours"]
    assert found[0]["name"] == os.path.abspath(collection / "high.wav")
    assert all(os.path.isfile(n["name"]) and not n["name"].endswith(".npy") for n in found)
    meta = json.loads((out / "audioembed.json").read_text())
    del meta["sources"]
    (out / "audioembed.json").write_text(json.dumps(meta))
    assert json.loads(runner.invoke(app, query).stdout)[0]["neighbours"][0]["name"] == "high.npy"
