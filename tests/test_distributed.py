"""`audioembed embed-cluster` on a local Ray instance, its actor class and its Parquet output."""

import errno
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioembed import Embedder
from audioembed.cli import app
from audioembed.errors import IndexFormatError

from conftest import noisy, tone

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from audioembed.outputs import parquet  # noqa: E402
from audioembed.integrations import ray as distributed  # noqa: E402

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", noisy(16000, 1.2345), 16000)  # 19752 samples: lengths float32 cannot hold exactly
    sf.write(root / "sub" / "b.flac", np.stack([tone(440, 44100, 0.77)] * 2, axis=1), 44100)
    sf.write(root / "sub" / "c.ogg", tone(880, 8000, 3.0), 8000)
    sf.write(root / "d.wav", noisy(22050, 0.5, seed=3), 22050)
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    return root


def rows_by_path(out):
    t = parquet.read_table(out).to_pylist()
    return {r["path"]: r for r in t}, len(t)


# The actor class and the Parquet format: plain Python, no Ray needed --------------------------------


def test_actor_rows_for_files_and_decoded_arrays(folder, tiny_model_dir):
    actor = distributed.EmbedBatch(str(tiny_model_dir), backend="onnx", frames=True, num_threads=1)
    paths = [str(folder / "a.wav"), str(folder / "corrupt.wav"), str(folder / "sub" / "b.flac"), str(folder / "gone.wav")]
    t = actor({"path": np.array(paths, dtype=object)})
    assert t.schema.field("seconds").type == pa.float64() and t.schema.field("timestamps").type == pa.list_(pa.float64())
    rows = t.to_pylist()
    reference = Embedder(tiny_model_dir, backend="onnx", num_threads=1)  # ORT's sums depend on its thread count
    good = rows[0]
    assert good["path"] == paths[0] and good["error"] is None and good["sr"] == 16000
    assert good["seconds"] == 19752 / 16000 == 1.2345  # float64 end to end: a float32 would read 1.2345000505...
    np.testing.assert_array_equal(np.array(good["embedding"], np.float32), reference.embed(paths[0]))
    frames = reference.embed_frames(paths[0])
    assert len(good["frames"]) == len(good["timestamps"]) == len(frames.timestamps) >= 2
    np.testing.assert_array_equal(np.array(good["frames"], np.float32), frames.embeddings)
    np.testing.assert_array_equal(np.array(good["timestamps"], np.float64), frames.timestamps)
    hop = frames.timestamps[1] - frames.timestamps[0]
    assert hop > 0 and good["timestamps"][-1] <= 1234.5 + hop  # ms, within the clip's 1234.5 ms
    assert rows[2]["sr"] == 44100 and rows[2]["seconds"] == 33957 / 44100 and rows[2]["error"] is None
    np.testing.assert_array_equal(np.array(rows[2]["embedding"], np.float32), reference.embed(paths[2]))
    assert not np.array_equal(rows[0]["embedding"], rows[2]["embedding"])
    for bad in (rows[1], rows[3]):
        assert bad["embedding"] is None and bad["frames"] is None and bad["sr"] is None
        assert bad["error"].startswith(bad["path"])
    assert "not a readable audio file" in rows[1]["error"] and "no such file" in rows[3]["error"]

    # ray.data.read_audio's columns: (channels, samples) float32 arrays and their rate
    stereo = np.stack([tone(440, 44100, 0.61), noisy(44100, 0.61)])
    empty = np.zeros((1, 0), np.float32)
    batch = {"amplitude": np.array([stereo, empty], dtype=object), "sample_rate": np.array([44100, 8000]),
             "path": np.array(["s3://b/x.wav", "s3://b/y.wav"], dtype=object)}
    rows = actor(batch).to_pylist()
    np.testing.assert_array_equal(np.array(rows[0]["embedding"], np.float32), reference.embed(stereo, sr=44100))
    assert rows[0]["path"] == "s3://b/x.wav" and rows[0]["seconds"] == stereo.shape[1] / 44100 and rows[0]["sr"] == 44100
    np.testing.assert_array_equal(rows[0]["timestamps"], reference.embed_frames(stereo, sr=44100).timestamps)
    assert rows[1]["embedding"] is None and "no audio samples" in rows[1]["error"]


def test_timestamps_and_seconds_are_float64_in_the_shard(tmp_path):
    """The documented float64: 0.1 ms and 1/3 s survive a write and a read bit for bit."""
    record = {"model": "m", "revision": None, "weights_sha256": {}, "dim": 2}
    rows = [{"path": "/a.wav", "embedding": np.ones(2, np.float32), "sr": 16000, "seconds": 1 / 3,
             "frames": np.ones((3, 2), np.float32), "timestamps": [0.1, 80.1, 1000 / 3]}]
    parquet.write_shard(parquet.table(2, rows, frames=True), tmp_path, parquet.shard_name("ab", 0), record)
    (shard,) = parquet.shards(tmp_path)
    schema = pq.read_schema(shard)
    assert schema.field("timestamps").type == pa.list_(pa.float64()) and schema.field("seconds").type == pa.float64()
    (row,) = parquet.read_table(tmp_path).to_pylist()
    assert row["timestamps"] == [0.1, 80.1, 1000 / 3] and row["seconds"] == 1 / 3


def test_actor_never_fails_its_batch(folder, tiny_model_dir):
    actor = distributed.EmbedBatch(str(tiny_model_dir), backend="onnx")

    def broken(wave, n_frames):
        raise RuntimeError("out of memory")

    actor.embedder.backend.run = broken
    rows = actor({"path": np.array([str(folder / "a.wav"), str(folder / "d.wav")], dtype=object)}).to_pylist()
    assert [r["embedding"] for r in rows] == [None, None]
    assert all(r["error"].endswith("RuntimeError: out of memory") and r["error"].startswith(r["path"]) for r in rows)


RECORD = {"model": "tiny", "revision": "v1", "weights_sha256": {"model.onnx": "ab" * 32}, "dim": 4}


def write(out, rows, n=0, record=RECORD, dim=4):
    return parquet.write_shard(parquet.table(dim, rows), out, parquet.shard_name("ab", n), record)


def test_reader_and_resume_scan(tmp_path):
    out = tmp_path / "out.parquet"
    rows = [
        {"path": "/z.wav", "embedding": np.full(4, 2, np.float32), "sr": 8000, "seconds": 1.0},
        {"path": "/bad.wav", "error": "/bad.wav: not a readable audio file"},
        {"path": "/a.wav", "embedding": np.arange(4, dtype=np.float32), "sr": 16000, "seconds": 0.5},
    ]
    write(out, rows[:2], 0)
    two = write(out, rows[2:], 1)
    assert [p.name for p in parquet.shards(out)] == ["audioembed-ab-000000.parquet", "audioembed-ab-000001.parquet"]
    assert not list(out.glob(".*"))  # the partial file was renamed into place
    paths, vectors = parquet.read_embeddings(out)
    assert paths == ["/a.wav", "/z.wav"] and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, [np.arange(4), np.full(4, 2)])
    assert parquet.read_record(out) == RECORD

    killed = out / parquet.shard_name("ab", 2)
    killed.write_bytes(two.read_bytes()[:-20])  # no footer
    with pytest.raises(IndexFormatError, match="audioembed-ab-000002.parquet: unreadable Parquet shard.*rerun embed-cluster"):
        parquet.read_embeddings(out)
    found = parquet.scan(out, RECORD)
    assert found.done == {"/z.wav", "/bad.wav", "/a.wav"}
    assert not killed.exists() and killed.with_name(killed.name + ".damaged").read_bytes() == two.read_bytes()[:-20]
    assert "audioembed-ab-000002.parquet: damaged" in found.notes[0] and "renamed" in found.notes[0]
    assert parquet.read_embeddings(out)[0] == ["/a.wav", "/z.wav"]  # the damaged shard is no longer in the way
    assert parquet.scan(tmp_path / "absent").done == set()


def test_a_shard_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write(out, [{"path": "/a.wav", "embedding": np.ones(4, np.float32)}], 0)

    def disk_full(table, where, **kwargs):  # a write that stops half-way
        Path(where).write_bytes(b"PAR1 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(OSError, match="No space"):
        write(out, [{"path": "/b.wav", "embedding": np.ones(4, np.float32)}], 1)
    assert [p.name for p in out.iterdir()] == [parquet.shard_name("ab", 0)]  # no half shard, no temp file left


def test_resume_leaves_foreign_files_alone_and_removes_only_its_half_written_shards(tmp_path):
    out = tmp_path / "out"
    ours = write(out, [{"path": "/a.wav", "embedding": np.ones(4, np.float32), "sr": 8000, "seconds": 1.0}])
    pq.write_table(pa.table({"customer": ["x", "y"]}), out / "customers.parquet")  # no path column
    pq.write_table(pa.table({"path": ["/b.wav"]}), out / "notes.parquet")  # a path column, not our name
    pq.write_table(parquet.table(4, [{"path": "/c.wav"}]), out / parquet.shard_name("cd", 0))  # our name, no marker
    (out / "broken.parquet").write_bytes(b"PAR1 half a file")  # not ours: never removed, even broken
    partial = out / f".{parquet.shard_name('ef', 3)}.partial"
    partial.write_bytes(ours.read_bytes()[:100])  # a write cut by a kill: our name, Parquet magic
    other = out / f".{parquet.shard_name('ef', 4)}.partial"
    other.write_bytes(b"user data")  # our name but not a Parquet start: left alone
    backup = out / "backup.parquet"  # a copy of a shard under the user's name: marked, but not ours to touch
    write(tmp_path, [{"path": "/old.wav", "embedding": np.ones(4, np.float32)}]).rename(backup)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p not in (partial, ours)}

    found = parquet.scan(out, RECORD)
    assert found.done == {"/a.wav"} and found.shards == [ours]
    assert not partial.exists()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p != ours} == before  # everything else untouched
    notes = "\n".join(found.notes)
    for name in ("customers.parquet", "notes.parquet", "broken.parquet", "backup.parquet", parquet.shard_name("cd", 0)):
        assert f"{name}: " in notes and "left alone" in notes
    assert "half-written" in notes and partial.name in notes
    assert parquet.read_embeddings(out)[0] == ["/a.wav"]  # search reads our shards only
    assert parquet.scan(out, RECORD, overwrite=True).done == set() and not ours.exists()  # --overwrite: ours only
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("code", [errno.EIO, errno.EACCES])
def test_a_shard_that_cannot_be_read_now_stops_the_resume_and_stays(tmp_path, monkeypatch, code):
    out = tmp_path / "out"
    first = write(out, [{"path": "/a.wav", "embedding": np.ones(4, np.float32)}], 0)
    second = write(out, [{"path": "/b.wav", "embedding": np.ones(4, np.float32)}], 1)
    data = second.read_bytes()
    real_open = parquet._open

    class Failing(io.FileIO):  # the disk fails on read, as EIO would, or the permissions on open
        def read(self, *args):
            raise OSError(code, os.strerror(code))

        readinto = read

    def failing_open(path):
        if path != second:
            return real_open(path)
        if code == errno.EACCES:  # root (CI) ignores file modes: deny the open as the kernel would
            raise PermissionError(code, os.strerror(code), str(path))
        return Failing(path)

    monkeypatch.setattr(parquet, "_open", failing_open)
    with pytest.raises(parquet.OutputError, match=f"{second.name}: cannot be read now.*nothing was changed"):
        parquet.scan(out, RECORD)
    assert second.read_bytes() == data and first.exists() and sorted(out.iterdir()) == [first, second]


def test_a_damaged_page_is_found_and_its_files_redone(tmp_path):
    """A shard whose footer and path column read fine but whose embeddings do not: the rerun must redo it."""
    out = tmp_path / "out"
    rows = [{"path": f"/{i}.wav", "embedding": np.full(4, i, np.float32), "sr": 8000, "seconds": 1.0} for i in range(50)]
    write(out, rows[:1], 0)
    shard = write(out, rows[1:], 1)
    column = pq.ParquetFile(shard).metadata.row_group(0).column(1)  # the embedding column chunk
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(shard.read_bytes())
    data[start : start + 16] = b"\xff" * 16  # its page header
    shard.write_bytes(bytes(data))
    assert len(pq.read_table(shard, columns=["path"])) == 49  # what the old scan read: it would skip all 49
    with pytest.raises(IndexFormatError, match="unreadable Parquet shard.*rerun embed-cluster with the same OUT"):
        parquet.read_embeddings(out)

    found = parquet.scan(out, RECORD)
    assert found.done == {"/0.wav"} and "damaged" in found.notes[0] and shard.name in found.notes[0]
    assert not shard.exists() and shard.with_name(shard.name + ".damaged").exists()
    assert parquet.read_embeddings(out)[0] == ["/0.wav"]  # the advice worked: search reads again


def test_resume_refuses_another_models_shards_or_recomputes_with_overwrite(tmp_path):
    out = tmp_path / "out"
    shard = write(out, [{"path": "/a.wav", "embedding": np.ones(4, np.float32)}])
    wide = dict(RECORD, dim=8, weights_sha256={"model.onnx": "cd" * 32})
    with pytest.raises(parquet.OutputError, match=r"written by tiny@v1 \(4-d.*this run uses tiny@v1 \(8-d.*--overwrite"):
        parquet.scan(out, wide)
    with pytest.raises(parquet.OutputError, match="written by tiny@v1.*this run uses other"):
        parquet.scan(out, dict(RECORD, model="other"))
    assert shard.exists() and parquet.scan(out, RECORD).done == {"/a.wav"}

    found = parquet.scan(out, wide, overwrite=True)
    assert found.done == set() and not shard.exists() and "--overwrite" in found.notes[0]

    write(out, [{"path": "/a.wav", "embedding": np.ones(4, np.float32)}], 0)
    write(out, [{"path": "/b.wav", "embedding": np.ones(8, np.float32)}], 1, record=wide, dim=8)
    with pytest.raises(IndexFormatError, match="written by different models.*4-d.*8-d"):
        parquet.read_record(out)
    with pytest.raises(IndexFormatError, match="different models"):
        parquet.read_embeddings(out)  # search never mixes 4-d and 8-d rows


def test_names_that_are_not_utf8_are_stored(tmp_path, folder, tiny_model_dir):
    name = os.fsdecode(b"caf\xe9 \xff.wav")  # latin-1 bytes: surrogates in Python's str
    audio_path = os.path.join(os.fsdecode(folder), name)
    sf.write(os.fsencode(audio_path), noisy(16000, 0.9, seed=7), 16000)
    actor = distributed.EmbedBatch(str(tiny_model_dir), backend="onnx", num_threads=1)
    (row,) = actor({"path": np.array([os.fsencode(audio_path)], dtype=object)}).to_pylist()  # as run() sends it
    assert row["error"] is None and row["sr"] == 16000 and row["seconds"] == 0.9
    assert row["path"] == str(folder) + "/caf\\xe9 \\xff.wav" == parquet.text(audio_path)
    reference = Embedder(tiny_model_dir, backend="onnx", num_threads=1)
    np.testing.assert_array_equal(np.array(row["embedding"], np.float32), reference.embed(audio_path))
    (bad,) = actor({"path": np.array([os.fsencode(audio_path + ".gone.wav")], dtype=object)}).to_pylist()
    assert bad["path"].endswith("\\xff.wav.gone.wav") and "no such file" in bad["error"] and "\\xff" in bad["error"]


def test_search_reads_the_parquet_output(tmp_path):
    out = tmp_path / "out.parquet"
    rows = [{"path": f"/{c}.wav", "embedding": np.eye(4, dtype=np.float32)[i] + 0.1, "sr": 16000, "seconds": 1.0}
            for i, c in enumerate("abc")] + [{"path": "/bad.wav", "error": "/bad.wav: not a readable audio file"}]
    write(out, rows)
    pq.write_table(pa.table({"path": ["/foreign.wav"]}), out / "foreign.parquet")  # not ours: not searched
    np.save(tmp_path / "q.npy", np.array([0, 0, 1, 0], np.float32))
    result = runner.invoke(app, ["search", str(tmp_path / "q.npy"), "--index", str(out), "-k", "5", "--json"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    neighbours = item["neighbours"]
    assert [n["name"] for n in neighbours][:1] == ["/c.wav"] and len(neighbours) == 3  # the error row is no neighbour


def test_manifests_folders_and_files(folder, tmp_path, monkeypatch):
    manifest = folder / "list.txt"
    manifest.write_text("a.wav\n\nsub/c.ogg\n" + str(folder / "a.wav") + "\n")
    failures = []
    monkeypatch.chdir(folder.parent)  # every source relative: the workers do not share this cwd
    sources = [Path(folder.name) / "list.txt", Path(folder.name) / "sub", Path(folder.name) / "d.wav", Path("nope")]
    found = distributed.list_inputs(sources, failures)
    assert found == [str(folder / p) for p in ("a.wav", "sub/c.ogg", "sub/b.flac", "d.wav")]
    assert all(os.path.isabs(p) for p in found)
    assert failures == ["nope: no such file or folder"]


def test_without_ray_the_command_says_what_to_install(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = runner.invoke(app, ["embed-cluster", str(folder), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and 'pip install ".[ray]"' in result.output and "pip install ray pandas pyarrow fsspec" in result.output


# On a local Ray instance: one, shared by the tests below (starting Ray takes seconds) -------------


@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2 * THREADS + 1, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


THREADS = os.cpu_count() or 1  # what `audioembed embed` gives ONNX Runtime: same threads, same sums


def cluster(*args, threads=1):
    options = ["--workers", "2", "--threads", str(threads), "--backend", "onnx", "-q"]
    return runner.invoke(app, ["embed-cluster", *map(str, args), *options])


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_cluster_equals_embed_bit_for_bit(ray_address, folder, tiny_model_dir, tmp_path):
    out, npy = tmp_path / "out.parquet", tmp_path / "npy"
    result = cluster(folder, "-o", out, "-m", tiny_model_dir, "--frames", threads=THREADS)
    assert result.exit_code == 1, result.output
    assert "4 embedded, 0 skipped" in result.output and "1 failed" in result.output and "corrupt.wav" in result.output
    runner.invoke(app, ["embed", str(folder), "-o", str(npy), "-m", str(tiny_model_dir), "--backend", "onnx", "--frames", "-q"])
    rows, n = rows_by_path(out)
    assert n == 5 and len(parquet.shards(out)) >= 2
    for rel in ("a", "sub/b", "sub/c", "d"):
        row = next(r for p, r in rows.items() if p.startswith(str(folder / rel) + "."))
        assert row["error"] is None
        np.testing.assert_array_equal(np.array(row["embedding"], np.float32), np.load(npy / f"{rel}.npy"))
        np.testing.assert_array_equal(np.array(row["frames"], np.float32), np.load(npy / f"{rel}.frames.npy"))
    bad = rows[str(folder / "corrupt.wav")]
    assert bad["embedding"] is None and "not a readable audio file" in bad["error"]
    schema = pq.read_schema(parquet.shards(out)[0])
    assert schema.names == ["path", "embedding", "sr", "seconds", "error", "frames", "timestamps"]
    assert schema.field("embedding").type == pa.list_(pa.float32(), 32)
    assert schema.field("timestamps").type == pa.list_(pa.float64()) and schema.field("seconds").type == pa.float64()
    record = Embedder(tiny_model_dir, backend="onnx").model_record()
    assert record["dim"] == 32 and record["weights_sha256"]["model.onnx"]
    assert all(json.loads(pq.read_schema(s).metadata[b"audioembed"])["model"] == record for s in parquet.shards(out))
    assert parquet.read_record(out) == record

    shards = parquet.shards(out)
    sf.write(folder / "new.wav", tone(300, 16000, 1.0), 16000)
    result = cluster(folder, "-o", out, "-m", tiny_model_dir, "--frames")
    assert "1 embedded, 5 skipped" in result.output and result.exit_code == 0, result.output
    assert set(shards) < set(parquet.shards(out))
    assert sorted(rows_by_path(out)[0]) == sorted([*rows, str(folder / "new.wav")])


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_killed_run_resumes_without_duplicates(ray_address, tmp_path, tiny_model_dir):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(48):
        sf.write(root / f"{i:02d}.wav", noisy(16000, 1.0 + i % 5, seed=i), 16000)
    out = tmp_path / "out.parquet"
    # -m relative to the driver's cwd, which the workers (started from this process's) do not share; one thread, as
    # cluster() and the reference below (ONNX Runtime's sums follow its thread count on AVX-512 machines)
    command = [sys.executable, "-m", "audioembed.cli", "embed-cluster", str(root), "-o", str(out), "-m", tiny_model_dir.name,
               "--workers", "2", "--threads", "1", "--backend", "onnx", "-q", "--address", ray_address]
    log = tmp_path / "driver.log"
    with open(log, "wb") as sink:
        driver = subprocess.Popen(command, cwd=tiny_model_dir.parent, stdout=sink, stderr=sink, start_new_session=True)
    deadline = time.time() + 120
    while not parquet.shards(out) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    driver.kill()  # SIGKILL, unless it has already ended
    driver.wait()
    time.sleep(3)  # Ray ends the dead driver's workers; a rerun must not race a write still in flight
    shards = parquet.shards(out)
    assert shards, f"the killed run wrote no shard: {log.read_text()[-3000:]}"
    shards[0].write_bytes(shards[0].read_bytes()[:-30])  # as a write cut by the kill would leave it

    result = cluster(root, "-o", out, "-m", tiny_model_dir)
    assert result.exit_code == 0 and "warning:" in result.output and f"{shards[0].name}: damaged" in result.output, result.output
    assert shards[0].with_name(shards[0].name + ".damaged").exists()  # set aside, not deleted
    assert not list(out.glob(".*.partial"))  # what the kill cut off mid-write is gone
    paths, vectors = parquet.read_embeddings(out)
    assert paths == [str(root / f"{i:02d}.wav") for i in range(48)]  # each once
    reference = Embedder(tiny_model_dir, backend="onnx", num_threads=1)
    np.testing.assert_array_equal(vectors[[0, 47]], reference.embed([paths[0], paths[47]]))


def test_cluster_names_that_are_not_utf8_and_another_model(ray_address, tmp_path, tiny_model_dir):
    root = tmp_path / "in"
    root.mkdir()
    odd = os.fsdecode(os.fsencode(root) + b"/caf\xe9.wav")  # not UTF-8: pa.array once aborted the whole job
    sf.write(os.fsencode(odd), noisy(16000, 0.7, seed=5), 16000)
    sf.write(root / "plain.wav", tone(500, 16000, 0.6), 16000)
    out = tmp_path / "out.parquet"
    result = cluster(root, "-o", out, "-m", tiny_model_dir)
    assert result.exit_code == 0 and "2 embedded, 0 skipped" in result.output, result.output
    paths, vectors = parquet.read_embeddings(out)
    assert paths == [str(root / "caf\\xe9.wav"), str(root / "plain.wav")]
    reference = Embedder(tiny_model_dir, backend="onnx", num_threads=1)
    np.testing.assert_allclose(vectors, reference.embed([odd, str(root / "plain.wav")]), rtol=1e-5, atol=1e-6)
    result = cluster(root, "-o", out, "-m", tiny_model_dir)
    assert result.exit_code == 0 and "0 embedded, 2 skipped" in result.output, result.output

    from conftest import build_tiny_model

    wide = tmp_path / "wide"
    build_tiny_model(wide, seed=1, dim=48)
    shards = parquet.shards(out)
    result = cluster(root, "-o", out, "-m", wide)
    assert result.exit_code == 2 and "(32-d" in result.output and "(48-d" in result.output, result.output
    assert "--overwrite" in result.output and parquet.shards(out) == shards  # nothing touched
    result = cluster(root, "-o", out, "-m", wide, "--overwrite")
    assert result.exit_code == 0 and "2 embedded, 0 skipped" in result.output, result.output
    assert not set(shards) & set(parquet.shards(out))
    assert parquet.read_record(out) == Embedder(wide, backend="onnx").model_record()
    assert parquet.read_embeddings(out)[1].shape == (2, 48)
