"""Model resolution through the real huggingface_hub code against a fake hub on 127.0.0.1."""

import shutil
import warnings

import numpy as np
import pytest

from audioembed import Embedder, hub
from audioembed.errors import IntegrityError, ModelError, ModelNotFoundError

from conftest import build_tiny_model, tone


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_downloads_from_the_hub_then_serves_from_cache(fake_hub, tiny_model_dir, monkeypatch, request):
    repo = "someone/tiny-a"
    commit = fake_hub.add_repo(repo, tiny_model_dir, revision="v1")
    e = Embedder(repo, revision="v1", backend="onnx")
    assert e.resolved.source == "hub" and e.resolved.folder.name == commit
    expected = Embedder(tiny_model_dir, backend="onnx").embed(tone(440), sr=16000)
    np.testing.assert_array_equal(e.embed(tone(440), sr=16000), expected)
    fetched = [r for r in fake_hub.requests if "tiny-a" in r and r.startswith("GET")]
    assert not any("model.safetensors" in r for r in fetched), "the onnx backend needs no torch weights"

    monkeypatch.setattr(fake_hub, "mode", "error500")
    with pytest.warns(UserWarning, match="cached copy"):
        cached = Embedder(repo, revision="v1", backend="onnx")
    assert cached.resolved.source == "cache"


def test_offline_mode_uses_the_cache_without_network(fake_hub, tiny_model_dir, offline):
    repo = "someone/tiny-b"
    fake_hub.add_repo(repo, tiny_model_dir)
    import huggingface_hub.constants as constants

    constants.HF_HUB_OFFLINE = False
    Embedder(repo, backend="onnx")  # fills the cache
    constants.HF_HUB_OFFLINE = True
    before = len(fake_hub.requests)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # offline by choice is no fallback: no warning
        e = Embedder(repo, backend="onnx")
    assert e.resolved.source == "cache"
    assert len(fake_hub.requests) == before, "offline mode must not touch the network"


def test_revision_pinned_to_a_commit(fake_hub, tmp_path):
    repo = "someone/versions"
    build_tiny_model(tmp_path / "v1", seed=1)
    build_tiny_model(tmp_path / "v2", seed=2)
    c1 = fake_hub.add_repo(repo, tmp_path / "v1", revision="main")
    v1 = Embedder(repo, revision=c1, backend="onnx").embed(tone(440), sr=16000)
    fake_hub.add_repo(repo, tmp_path / "v2", revision="main")
    latest = Embedder(repo, backend="onnx").embed(tone(440), sr=16000)
    pinned = Embedder(repo, revision=c1, backend="onnx").embed(tone(440), sr=16000)
    np.testing.assert_array_equal(pinned, v1)
    assert np.abs(latest - v1).max() > 1e-4


@pytest.mark.parametrize("mode", ["error500", "hang", "truncate"])
def test_default_model_falls_back_to_bundled_weights(fake_hub, tiny_model_dir, tmp_path, monkeypatch, mode):
    bundled = tmp_path / "weights" / "audioembed-base"
    shutil.copytree(tiny_model_dir, bundled)
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", tmp_path / "weights")
    monkeypatch.setattr(fake_hub, "mode", mode)
    monkeypatch.setattr(hub, "DEFAULT_REVISION", f"never-cached-{mode}")
    with pytest.warns(UserWarning, match="bundled"):
        e = Embedder(backend="onnx")
    assert e.resolved.source == "bundled" and e.resolved.folder == bundled
    expected = Embedder(tiny_model_dir, backend="onnx").embed(tone(440), sr=16000)
    np.testing.assert_array_equal(e.embed(tone(440), sr=16000), expected)


def test_no_weights_anywhere_says_how_to_get_them(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", tmp_path / "none")
    monkeypatch.setattr(hub, "SOURCE_MODELS", tmp_path / "none")
    monkeypatch.setattr(fake_hub, "mode", "error500")
    monkeypatch.setattr(hub, "DEFAULT_REVISION", "never-cached")
    with pytest.raises(ModelNotFoundError, match="audioembed pretrain"):
        Embedder(backend="onnx")
    with pytest.raises(ModelNotFoundError, match="someone/missing"):
        Embedder("someone/missing", backend="onnx")


def test_tampered_download_is_rejected(fake_hub, tiny_model_dir, tmp_path, monkeypatch):
    repo = "someone/tampered"
    fake_hub.add_repo(repo, tiny_model_dir)
    monkeypatch.setattr(fake_hub, "mode", "tamper")
    with pytest.raises(IntegrityError, match="sha256"):
        Embedder(repo, backend="onnx")


def test_altered_local_weights_are_rejected(tiny_model_dir, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, folder)
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-1] ^= 1
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.onnx"):
        Embedder(folder, backend="onnx")


def test_local_folder_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        Embedder(tmp_path, backend="onnx")


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_says_in_one_plain_line_where_the_model_came_from_and_nothing_offline(tmp_path):
    """No Python warning with a source line: one line on stderr, and silence when offline was asked for."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_HOME": str(tmp_path / "hf")}
    args = [sys.executable, "-m", "audioembed.cli", "info", "--backend", "onnx"]
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "bundled" in run.stdout
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("note: ") and "bundled" in lines[0], run.stderr
    assert "Warning" not in run.stderr and ".py:" not in run.stderr
    run = subprocess.run(args, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "bundled" in run.stdout and run.stderr == ""


def test_library_users_keep_a_warning_category_to_filter(fake_hub, tiny_model_dir, tmp_path, monkeypatch, offline):
    from audioembed.errors import ModelSourceWarning

    bundled = tmp_path / "weights" / "audioembed-base"
    shutil.copytree(tiny_model_dir, bundled)
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", tmp_path / "weights")
    monkeypatch.setattr(hub, "DEFAULT_REVISION", "never-cached-offline")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # offline by choice: the bundled weights are what was asked for
        assert Embedder(backend="onnx").resolved.source == "bundled"
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(fake_hub, "mode", "error500")
    with pytest.warns(ModelSourceWarning, match="bundled") as caught:
        Embedder(backend="onnx")
    assert issubclass(caught[0].category, UserWarning)


@pytest.mark.parametrize("revision", ["../../x", "refs/../../x", "/etc/passwd", "a//b", "main/", "a\\b", "v1\n", "", "x" * 300])
def test_revisions_are_validated_before_any_lookup(fake_hub, revision, offline):
    """Offline, huggingface_hub reads CACHE/models--ORG--NAME/refs/REVISION: a `../` would read outside the cache."""
    before = len(fake_hub.requests)
    with pytest.raises(ModelError, match="not a valid revision"):
        Embedder("someone/tiny-a", revision=revision, backend="onnx")
    assert len(fake_hub.requests) == before


@pytest.mark.parametrize("revision", ["main", "v0.1.0", "refs/pr/1", "a" * 40, "release_2-x"])
def test_valid_revisions_pass_the_check(revision):
    hub.check_revision(revision)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_weight_file_that_is_not_a_regular_file_is_named_so(tiny_model_dir, tmp_path, kind):
    import os

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.onnx").unlink()
    os.mkdir(folder / "model.onnx") if kind == "folder" else os.mkfifo(folder / "model.onnx")
    with pytest.raises(ModelError, match="model.onnx is not a regular file"):
        Embedder(folder, backend="onnx")


@pytest.mark.parametrize("name", ["runs/model", "./model", "{tmp}/model", "~/no-such-audioembed-model"])
def test_a_mistyped_local_path_fails_loudly_without_asking_the_hub(tmp_path, monkeypatch, fake_hub, name):
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    before = len(fake_hub.requests)
    hint = ".*hf-hub:runs/model" if name == "runs/model" else ""
    with pytest.raises(ModelNotFoundError, match=r"not a model folder \(no such folder\); check the path" + hint):
        Embedder(name.format(tmp=tmp_path), backend="onnx")
    assert len(fake_hub.requests) == before, "a path-like name must never reach the hub"


def test_hf_hub_prefix_names_a_hub_repo_even_where_a_folder_of_that_name_exists(tiny_model_dir, tmp_path, monkeypatch, fake_hub):
    fake_hub.add_repo("runs/model", tiny_model_dir)
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    e = Embedder("hf-hub:runs/model", backend="onnx")
    assert (e.resolved.source, e.resolved.model_id) == ("hub", "runs/model")
