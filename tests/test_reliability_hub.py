"""Hub outages and tampering against the loopback fake hub: 500s, timeouts, truncated and altered
downloads, per file; a tag that moves mid-download; revisions pinned to a commit."""

import shutil
import warnings

import numpy as np
import pytest

from audioembed import Embedder, hub
from audioembed.errors import IntegrityError, ModelError, ModelNotFoundError

from conftest import HUB_PORT, build_tiny_model, tone
from fakehub import FakeHub



@pytest.fixture(scope="module")
def fake_hub():
    server = FakeHub(HUB_PORT)
    yield server
    print(f"\nfake hub: {server.faults_injected} faulty responses served")
    server.close()


@pytest.fixture(autouse=True)
def healthy(fake_hub):
    fake_hub.mode, fake_hub.fault_files, fake_hub.after_get = "ok", None, None
    yield
    fake_hub.mode, fake_hub.fault_files, fake_hub.after_get = "ok", None, None


def vector(e: Embedder) -> np.ndarray:
    return e.embed(tone(440), sr=16000)


WEIGHTS, CONFIG = {"model.onnx"}, {"config.json"}
OUTAGES = [("error500", None), ("error500", CONFIG), ("error500", WEIGHTS), ("hang", WEIGHTS)]
BAD_BYTES = [("truncate", None), ("truncate", WEIGHTS), ("tamper", None), ("tamper", WEIGHTS)]
UNCACHED_FAULTS = [("error500", None), ("error500", WEIGHTS), ("hang", None), ("truncate", WEIGHTS), ("tamper", None)]


def cached_repo(fake_hub, model_dir, fault, files) -> tuple[str, Embedder]:
    repo = f"someone/cached-{fault}-{'-'.join(sorted(files or ['all'])).replace('.', '')}"
    fake_hub.add_repo(repo, model_dir, revision="v1")
    return repo, Embedder(repo, revision="v1", backend="onnx")  # fills the cache


@pytest.mark.parametrize("fault, files", OUTAGES)
def test_cached_model_survives_a_hub_outage(fake_hub, tiny_model_dir, fault, files):
    repo, first = cached_repo(fake_hub, tiny_model_dir, fault, files)
    good = vector(first)
    fake_hub.mode, fake_hub.fault_files = fault, files
    with pytest.warns(UserWarning, match="hub unavailable.*cached copy"):
        e = Embedder(repo, revision="v1", backend="onnx")
    assert e.resolved.source == "cache"
    np.testing.assert_array_equal(vector(e), good)


@pytest.mark.parametrize("fault, files", BAD_BYTES)
def test_bad_bytes_are_never_used_nor_cached(fake_hub, tiny_model_dir, fault, files):
    """The cache lost the faulted files (a cache cleanup, a disk quota), so they are downloaded again and the
    hub's bad bytes reach audioembed: a short body is an outage with no cached copy left to fall back to, an
    altered one an IntegrityError; neither is used or left in the cache, and a healthy hub heals it."""
    repo, first = cached_repo(fake_hub, tiny_model_dir, fault, files)
    good, snapshot = vector(first), first.resolved.folder
    for name in sorted(files or CONFIG | WEIGHTS):  # evict the blob and its snapshot link
        blob = (snapshot / name).resolve()
        (snapshot / name).unlink()
        blob.unlink()
    fake_hub.mode, fake_hub.fault_files = fault, files
    before = len(fake_hub.requests)
    error, message = (IntegrityError, r"model\.onnx: sha256 .* does not match") if fault == "tamper" else (
        ModelNotFoundError, f"{repo}@v1: cannot get model.onnx")
    with pytest.raises(error, match=message):
        Embedder(repo, revision="v1", backend="onnx")
    bad_gets = [r for r in fake_hub.requests[before:] if r.startswith("GET") and r.rsplit("/", 1)[-1] in (files or CONFIG | WEIGHTS)]
    assert bad_gets, "the faulty bytes were never requested: this test would test nothing"
    assert not (snapshot / "model.onnx").exists()
    fake_hub.mode = "ok"
    e = Embedder(repo, revision="v1", backend="onnx")
    assert e.resolved.source == "hub"
    np.testing.assert_array_equal(vector(e), good)


@pytest.mark.parametrize("fault, files", UNCACHED_FAULTS)
def test_uncached_model_fails_clearly(fake_hub, tiny_model_dir, fault, files):
    repo = f"someone/uncached-{fault}-{'x' if files else 'all'}"
    fake_hub.add_repo(repo, tiny_model_dir)
    fake_hub.mode, fake_hub.fault_files = fault, files
    with pytest.raises(ModelError) as info:
        Embedder(repo, backend="onnx")
    message = str(info.value)
    assert ("sha256" in message and "model.onnx" in message) if fault == "tamper" else repo in message
    if isinstance(info.value, ModelNotFoundError):
        assert "local model folder" in message


def test_probe_checks_the_weights_too(fake_hub, tiny_model_dir):
    """config.json answers but the weights 500: that is an outage, reported as the cache fallback it is."""
    repo = "someone/weights-down"
    fake_hub.add_repo(repo, tiny_model_dir)
    Embedder(repo, backend="onnx")
    fake_hub.mode, fake_hub.fault_files = "error500", {"model.onnx"}
    with pytest.warns(UserWarning, match="cached copy"):
        e = Embedder(repo, backend="onnx")
    assert e.resolved.source == "cache"


def test_weights_come_from_the_commit_the_config_came_from(fake_hub, tmp_path):
    """The tag moves between the config and the weights download: no mixing of revisions."""
    repo = "someone/moving"
    build_tiny_model(tmp_path / "v1", seed=1)
    build_tiny_model(tmp_path / "v2", seed=2)
    c1 = fake_hub.add_repo(repo, tmp_path / "v1", revision="main")
    expected = vector(Embedder(tmp_path / "v1", backend="onnx"))

    def move_tag(path):
        if path.endswith("/config.json") and "/moving/" in path:
            fake_hub.add_repo(repo, tmp_path / "v2", revision="main")

    fake_hub.after_get = move_tag
    e = Embedder(repo, backend="onnx")
    assert e.resolved.folder.name == c1
    np.testing.assert_array_equal(vector(e), expected)
    assert (e.resolved.folder / "model.onnx").resolve().read_bytes() == (tmp_path / "v1" / "model.onnx").read_bytes()


def test_revision_pinned_to_a_commit_is_stable_offline(fake_hub, tmp_path, monkeypatch):
    repo = "someone/pinned"
    build_tiny_model(tmp_path / "v1", seed=3)
    build_tiny_model(tmp_path / "v2", seed=4)
    c1 = fake_hub.add_repo(repo, tmp_path / "v1", revision="main")
    fake_hub.add_repo(repo, tmp_path / "v2", revision="main")
    pinned = vector(Embedder(repo, revision=c1, backend="onnx"))
    np.testing.assert_array_equal(pinned, vector(Embedder(tmp_path / "v1", backend="onnx")))
    fake_hub.mode = "error500"
    with pytest.warns(UserWarning, match="cached copy"):
        again = Embedder(repo, revision=c1, backend="onnx")
    np.testing.assert_array_equal(vector(again), pinned)


def test_weights_without_a_recorded_digest_from_the_hub_are_refused(fake_hub, tiny_model_dir, tmp_path):
    """A hub model must record the sha256 of its weights: otherwise an altered download goes unnoticed."""
    import json

    folder = tmp_path / "nodigest"
    shutil.copytree(tiny_model_dir, folder)
    data = json.loads((folder / "config.json").read_text())
    data["sha256"] = {}
    (folder / "config.json").write_text(json.dumps(data))
    fake_hub.add_repo("someone/nodigest", folder)
    with pytest.raises(IntegrityError, match="no sha256"):
        Embedder("someone/nodigest", backend="onnx")
    local = vector(Embedder(folder, backend="onnx"))  # a local folder is the user's own
    np.testing.assert_array_equal(local, vector(Embedder(tiny_model_dir, backend="onnx")))


def test_a_tampered_download_does_not_poison_the_cache(fake_hub, tiny_model_dir):
    repo = "someone/poison"
    fake_hub.add_repo(repo, tiny_model_dir)
    fake_hub.mode = "tamper"
    with pytest.raises(IntegrityError):
        Embedder(repo, backend="onnx")
    fake_hub.mode = "ok"  # the hub (or the network path) is healthy again
    e = Embedder(repo, backend="onnx")
    np.testing.assert_array_equal(vector(e), vector(Embedder(tiny_model_dir, backend="onnx")))


@pytest.mark.parametrize("planted", ["file", "folder"])
def test_a_failed_digest_never_deletes_outside_the_cache(fake_hub, tiny_model_dir, tmp_path, monkeypatch, planted):
    """A planted cache entry that links elsewhere fails its sha256; only cache entries may be removed."""
    import huggingface_hub.constants as constants

    repo = f"someone/planted-{planted}"
    fake_hub.add_repo(repo, tiny_model_dir)
    snapshot = Embedder(repo, backend="onnx").resolved.folder  # fills the cache
    victim = tmp_path / "victim" / "model.onnx"
    victim.parent.mkdir()
    victim.write_bytes(b"precious, not a model")
    if planted == "file":
        (snapshot / "model.onnx").unlink()
        (snapshot / "model.onnx").symlink_to(victim)
    else:
        (victim.parent / "config.json").write_bytes((snapshot / "config.json").read_bytes())
        shutil.rmtree(snapshot)
        snapshot.symlink_to(victim.parent)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(IntegrityError, match="does not match"):
        Embedder(repo, backend="onnx")
    assert victim.read_bytes() == b"precious, not a model"
