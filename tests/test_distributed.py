"""`audioembed embed-cluster` on a local Ray instance, its actor class and its Parquet output."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioembed import Embedder
from audioembed.cli import app

from conftest import noisy, tone

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from audioembed import distributed, parquet  # noqa: E402

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "a.wav", noisy(16000, 2.0), 16000)
    sf.write(root / "sub" / "b.flac", np.stack([tone(440, 44100, 1.0)] * 2, axis=1), 44100)
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
    rows = actor({"path": np.array(paths, dtype=object)}).to_pylist()
    reference = Embedder(tiny_model_dir, backend="onnx", num_threads=1)  # ORT's sums depend on its thread count
    good = rows[0]
    assert good["path"] == paths[0] and good["error"] is None and good["sr"] == 16000 and good["seconds"] == 2.0
    np.testing.assert_array_equal(np.array(good["embedding"], np.float32), reference.embed(paths[0]))
    frames = reference.embed_frames(paths[0])
    np.testing.assert_array_equal(np.array(good["frames"], np.float32), frames.embeddings)
    np.testing.assert_array_equal(good["timestamps"], frames.timestamps)
    assert rows[2]["sr"] == 44100 and rows[2]["seconds"] == 1.0 and rows[2]["error"] is None
    for bad in (rows[1], rows[3]):
        assert bad["embedding"] is None and bad["frames"] is None and bad["sr"] is None
        assert bad["error"].startswith(bad["path"])
    assert "not a readable audio file" in rows[1]["error"] and "no such file" in rows[3]["error"]

    # ray.data.read_audio's columns: (channels, samples) float32 arrays and their rate
    stereo = np.stack([tone(440, 44100, 1.0), noisy(44100, 1.0)])
    empty = np.zeros((1, 0), np.float32)
    batch = {"amplitude": np.array([stereo, empty], dtype=object), "sample_rate": np.array([44100, 8000]),
             "path": np.array(["s3://b/x.wav", "s3://b/y.wav"], dtype=object)}
    rows = actor(batch).to_pylist()
    np.testing.assert_array_equal(np.array(rows[0]["embedding"], np.float32), reference.embed(stereo, sr=44100))
    assert rows[0]["path"] == "s3://b/x.wav" and rows[0]["seconds"] == 1.0 and rows[0]["sr"] == 44100
    assert rows[1]["embedding"] is None and "no audio samples" in rows[1]["error"]


def test_actor_never_fails_its_batch(folder, tiny_model_dir):
    actor = distributed.EmbedBatch(str(tiny_model_dir), backend="onnx")

    def broken(wave, n_frames):
        raise RuntimeError("out of memory")

    actor.embedder.backend.run = broken
    rows = actor({"path": np.array([str(folder / "a.wav"), str(folder / "d.wav")], dtype=object)}).to_pylist()
    assert [r["embedding"] for r in rows] == [None, None]
    assert all(r["error"].endswith("RuntimeError: out of memory") and r["error"].startswith(r["path"]) for r in rows)


def test_reader_and_resume_scan(tmp_path):
    out = tmp_path / "out.parquet"
    out.mkdir()
    rows = [
        {"path": "/z.wav", "embedding": np.full(4, 2, np.float32), "sr": 8000, "seconds": 1.0},
        {"path": "/bad.wav", "error": "/bad.wav: not a readable audio file"},
        {"path": "/a.wav", "embedding": np.arange(4, dtype=np.float32), "sr": 16000, "seconds": 0.5},
    ]
    pq.write_table(parquet.table(4, rows[:2]), out / "one.parquet")
    pq.write_table(parquet.table(4, rows[2:]), out / "two.parquet")
    paths, vectors = parquet.read_embeddings(out)
    assert paths == ["/a.wav", "/z.wav"] and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, [np.arange(4), np.full(4, 2)])

    (out / "killed.parquet").write_bytes((out / "two.parquet").read_bytes()[:-20])  # no footer
    with pytest.raises(OSError, match="killed.parquet: unreadable Parquet shard.*rerun embed-cluster"):
        parquet.read_embeddings(out)
    removed = []
    assert parquet.finished_paths(out, removed) == {"/z.wav", "/bad.wav", "/a.wav"}
    assert not (out / "killed.parquet").exists() and "killed.parquet" in removed[0]
    assert parquet.finished_paths(tmp_path / "absent") == set()


def test_search_reads_the_parquet_output(tmp_path):
    out = tmp_path / "out.parquet"
    out.mkdir()
    rows = [{"path": f"/{c}.wav", "embedding": np.eye(4, dtype=np.float32)[i] + 0.1, "sr": 16000, "seconds": 1.0}
            for i, c in enumerate("abc")] + [{"path": "/bad.wav", "error": "/bad.wav: not a readable audio file"}]
    pq.write_table(parquet.table(4, rows), out / "0.parquet")
    np.save(tmp_path / "q.npy", np.array([0, 0, 1, 0], np.float32))
    result = runner.invoke(app, ["search", str(tmp_path / "q.npy"), "--index", str(out), "-k", "5", "--json"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)
    neighbours = item["neighbours"]
    assert [n["name"] for n in neighbours][:1] == ["/c.wav"] and len(neighbours) == 3  # the error row is no neighbour


def test_manifests_folders_and_files(folder, tmp_path):
    manifest = folder / "list.txt"
    manifest.write_text("a.wav\n\nsub/c.ogg\n" + str(folder / "a.wav") + "\n")
    failures = []
    found = distributed.list_inputs([manifest, folder / "sub", folder / "d.wav", tmp_path / "nope"], failures)
    assert found == [str(folder / p) for p in ("a.wav", "sub/c.ogg", "sub/b.flac", "d.wav")]
    assert failures == [f"{tmp_path / 'nope'}: no such file or folder"]


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
    # -m relative to the driver's cwd, which the workers (started from this process's) do not share
    command = [sys.executable, "-m", "audioembed.cli", "embed-cluster", str(root), "-o", str(out), "-m", tiny_model_dir.name,
               "--workers", "2", "--backend", "onnx", "-q", "--address", ray_address]
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
    assert result.exit_code == 0 and "warning:" in result.output and "unreadable" in result.output, result.output
    paths, vectors = parquet.read_embeddings(out)
    assert paths == [str(root / f"{i:02d}.wav") for i in range(48)]  # each once
    reference = Embedder(tiny_model_dir, backend="onnx", num_threads=1)
    np.testing.assert_array_equal(vectors[[0, 47]], reference.embed([paths[0], paths[47]]))
