"""Model resolution through the real huggingface_hub code against a fake hub on 127.0.0.1."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from audioembed import Embedder, hub
from audioembed.errors import IntegrityError, ModelError, ModelNotFoundError

from conftest import build_tiny_model, tone

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path):
    """An empty hub cache for this test: the default model's real pin may be cached by another test."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def bundled(monkeypatch, tmp_path, tiny_model_dir):
    """The tiny model as the weights bundled with audioembed (and no source checkout's models/)."""
    folder = tmp_path / "weights" / "audioembed-base"
    shutil.copytree(tiny_model_dir, folder)
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", tmp_path / "weights")
    monkeypatch.setattr(hub, "SOURCE_MODELS", tmp_path / "no-models")
    return folder


def _strip_digests(folder):
    import json

    data = json.loads((folder / "config.json").read_text())
    data["sha256"] = {}
    (folder / "config.json").write_text(json.dumps(data))


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


@pytest.mark.parametrize("mode", ["ok", "error500", "hang"])
def test_the_default_model_is_its_bundled_copy_with_no_hub_call_and_no_note(fake_hub, bundled, tiny_model_dir, tmp_path, mode):
    """The bundled weights are the pinned revision: Embedder() never asks the hub, whatever it would answer."""
    build_tiny_model(tmp_path / "other", seed=5)
    fake_hub.add_repo(hub.DEFAULT_MODEL, tmp_path / "other", revision=hub.DEFAULT_REVISION)
    fake_hub.mode = mode
    before = len(fake_hub.requests)
    expected = Embedder(tiny_model_dir, backend="onnx").embed(tone(440), sr=16000)
    try:
        for args, kwargs in [((), {}), ((hub.DEFAULT_MODEL,), {}), ((), {"revision": hub.DEFAULT_REVISION})]:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no note: nothing fell back
                e = Embedder(*args, backend="onnx", **kwargs)
            assert (e.resolved.source, e.resolved.folder) == ("bundled", bundled)
            assert (e.resolved.model_id, e.resolved.revision) == (hub.DEFAULT_MODEL, hub.DEFAULT_REVISION)
            np.testing.assert_array_equal(e.embed(tone(440), sr=16000), expected)
    finally:
        fake_hub.mode = "ok"
    assert fake_hub.requests[before:] == [], "the default model must not touch the network"


def test_the_hub_is_asked_for_the_default_models_real_pin(fake_hub, tmp_path, monkeypatch, fresh_cache):
    """With no bundled copy the hub serves the default model, at the revision this package pins (DEFAULT_REVISION
    as shipped, not patched), never at main; `hf-hub:` asks the hub for it even when a bundled copy exists."""
    assert hub.DEFAULT_REVISION not in ("", "main")
    assert f"audioembed-base** {hub.DEFAULT_REVISION}" in (ROOT / "models" / "audioembed-base" / "README.md").read_text()
    shipped = hub.PACKAGE_WEIGHTS, hub.SOURCE_MODELS
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", tmp_path / "none")
    monkeypatch.setattr(hub, "SOURCE_MODELS", tmp_path / "none")
    build_tiny_model(tmp_path / "pinned", seed=1)
    build_tiny_model(tmp_path / "main", seed=2)
    fake_hub.add_repo(hub.DEFAULT_MODEL, tmp_path / "pinned", revision=hub.DEFAULT_REVISION)
    fake_hub.add_repo(hub.DEFAULT_MODEL, tmp_path / "main", revision="main")
    pinned = Embedder(tmp_path / "pinned", backend="onnx").embed(tone(440), sr=16000)
    del fake_hub.requests[:]
    e = Embedder(backend="onnx")
    assert (e.resolved.source, e.resolved.revision) == ("hub", hub.DEFAULT_REVISION)
    np.testing.assert_array_equal(e.embed(tone(440), sr=16000), pinned)
    assert fake_hub.asked(hub.DEFAULT_MODEL) and set(fake_hub.asked(hub.DEFAULT_MODEL)) == {hub.DEFAULT_REVISION}
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", shipped[0])  # a bundled copy again: hf-hub: still asks the hub
    monkeypatch.setattr(hub, "SOURCE_MODELS", shipped[1])
    del fake_hub.requests[:]
    e = Embedder(f"{hub.HUB_PREFIX}{hub.DEFAULT_MODEL}", backend="onnx")
    assert (e.resolved.source, e.resolved.revision) == ("hub", hub.DEFAULT_REVISION)
    np.testing.assert_array_equal(e.embed(tone(440), sr=16000), pinned)
    assert fake_hub.asked(hub.DEFAULT_MODEL) and set(fake_hub.asked(hub.DEFAULT_MODEL)) == {hub.DEFAULT_REVISION}


def test_no_bundled_fallback_for_another_repo_or_revision(fake_hub, bundled, fresh_cache):
    """`someone-else/audioembed-base@v9`, or our repo at another revision, is another model: with the hub
    down and nothing cached it is an error, never our bundled weights."""
    fake_hub.mode = "error500"
    try:
        for model, revision in [("someone-else/audioembed-base", "v9"), ("someone-else/audioembed-base", None),
                                ("someone-else/audioembed-base", hub.DEFAULT_REVISION), (hub.DEFAULT_MODEL, "v9"),
                                (hub.DEFAULT_MODEL, "main")]:
            with pytest.raises(ModelNotFoundError, match=f"{model}@{revision or 'main'}: cannot get model.onnx"):
                Embedder(model, revision=revision, backend="onnx")
        with pytest.warns(UserWarning, match="bundled"):  # the pin itself, asked of the hub: the bundled copy is it
            e = Embedder(f"{hub.HUB_PREFIX}{hub.DEFAULT_MODEL}", backend="onnx")
        assert (e.resolved.source, e.resolved.folder, e.resolved.revision) == ("bundled", bundled, hub.DEFAULT_REVISION)
    finally:
        fake_hub.mode = "ok"


def test_unhashed_bundled_weights_are_refused(fake_hub, bundled):
    _strip_digests(bundled)
    with pytest.raises(IntegrityError, match=r"audioembed-base/model\.onnx: no sha256 recorded"):
        Embedder(backend="onnx")


def test_unhashed_cached_weights_are_refused(fake_hub, tiny_model_dir, tmp_path, monkeypatch):
    """Refused when downloaded, and again when the same files are read back from the cache offline."""
    import huggingface_hub.constants as constants

    folder = tmp_path / "nodigest"
    shutil.copytree(tiny_model_dir, folder)
    _strip_digests(folder)
    fake_hub.add_repo("someone/nodigest-cached", folder)
    with pytest.raises(IntegrityError, match="no sha256"):
        Embedder("someone/nodigest-cached", backend="onnx")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.resolve("someone/nodigest-cached", None, "model.onnx").source == "cache"
    with pytest.raises(IntegrityError, match=r"model\.onnx: no sha256 recorded"):
        Embedder("someone/nodigest-cached", backend="onnx")


def test_model_source_warning_points_at_the_callers_line(fake_hub, tiny_model_dir):
    import inspect

    from audioembed.errors import ModelSourceWarning

    fake_hub.add_repo("someone/warn-line", tiny_model_dir)
    Embedder("someone/warn-line", backend="onnx")  # fills the cache
    fake_hub.mode = "error500"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno + 1
            Embedder("someone/warn-line", backend="onnx")
    finally:
        fake_hub.mode = "ok"
    [w] = [w for w in caught if issubclass(w.category, ModelSourceWarning)]
    assert (w.filename, w.lineno) == (__file__, line)
    assert "HF_HUB_OFFLINE=1" in str(w.message)


def test_no_weights_anywhere_says_how_to_get_them(fake_hub, tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setattr(hub, "PACKAGE_WEIGHTS", tmp_path / "none")
    monkeypatch.setattr(hub, "SOURCE_MODELS", tmp_path / "none")
    monkeypatch.setattr(fake_hub, "mode", "error500")
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
    with pytest.raises(IntegrityError, match=r"model\.onnx: sha256 .* this folder's files do not match its config\.json") as info:
        Embedder(folder, backend="onnx")
    assert "download" not in str(info.value) and "cache" not in str(info.value)  # a local folder came from nowhere


def test_local_folder_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        Embedder(tmp_path, backend="onnx")


class SilentHub:
    """A hub endpoint that accepts connections (the kernel completes them into the listen backlog) and never
    answers, as a captive portal or a dead proxy does; `connections()` counts the ones that arrived."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                self.sock.accept()[0].close()
            except BlockingIOError:
                return count
            count += 1

    def close(self):
        self.sock.close()


def _cli(args, env, timeout=120):
    """(completed process, seconds it took)."""
    import subprocess
    import sys
    import time

    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "audioembed.cli", *map(str, args)], env=env, capture_output=True,
                         text=True, timeout=timeout)
    return run, time.perf_counter() - start


def _cli_env(tmp_path, endpoint):
    """As a user has it: huggingface_hub's own timeouts (none of conftest's 2 s), online, an empty cache."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")}
    return {**env, "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}


def test_the_default_model_needs_no_network(tmp_path):
    """`embed`, `info` and `search` with an audio query, default model, a hub that never answers: no connection,
    no note, and no slower than with HF_HUB_OFFLINE=1 (under 3 s on an idle machine; was 14 s)."""
    import soundfile as sf

    sf.write(tmp_path / "a.wav", tone(440, seconds=2.0), 16000)
    silent = SilentHub()
    try:
        env = _cli_env(tmp_path, silent.url)
        commands = [["info"], ["embed", tmp_path / "a.wav", "-o", tmp_path / "out"], ["search", tmp_path / "a.wav", "--index", tmp_path / "out", "-k", "1"]]
        for args in commands:
            offline, offline_s = _cli(args, {**env, "HF_HUB_OFFLINE": "1"})  # just before: the same load on the machine
            assert offline.returncode == 0, offline.stderr
            run, seconds = _cli(args if args[0] != "embed" else [*args, "--overwrite"], env)
            assert run.returncode == 0, run.stderr
            assert "note" not in run.stderr and "hub" not in run.stderr, run.stderr
            # a wait for the hub would cost HUB_TIMEOUT (3 s) or more; the margin only absorbs a busy machine
            assert seconds < max(3.0, offline_s + 2.0), (args, seconds, offline_s)
            assert silent.connections() == 0, f"{args[0]} connected to the hub"
            assert args[0] != "info" or "bundled" in run.stdout
    finally:
        silent.close()


def test_a_hub_that_never_answers_costs_a_non_default_model_a_few_seconds(tmp_path):
    """Another model: one short wait, then a one-line error; `hf-hub:` + the default id: one short wait, then the
    bundled copy with a note that names HF_HUB_OFFLINE=1, which then silences it."""
    silent = SilentHub()
    try:
        env = _cli_env(tmp_path, silent.url)
        _, baseline = _cli(["info", "--backend", "onnx"], env)  # the default model: no network at all
        run, seconds = _cli(["info", "-m", "someone/model", "--backend", "onnx"], env)
        assert run.returncode == 2 and run.stdout == ""
        [line] = run.stderr.splitlines()
        assert line.startswith("error: someone/model@main: cannot get model.onnx") and "local model folder" in line
        assert seconds < baseline + 8.0, (seconds, baseline)  # one wait of HUB_TIMEOUT (3 s) and an import; was 14 s
        assert silent.connections() == 1, "one request, no retries, no telemetry registry"

        args = ["info", "-m", f"{hub.HUB_PREFIX}{hub.DEFAULT_MODEL}", "--backend", "onnx"]
        run, seconds = _cli(args, env)
        assert run.returncode == 0 and "bundled" in run.stdout, run.stderr
        [line] = run.stderr.splitlines()  # one plain line: no Python warning with its source line
        assert line.startswith("note: ") and "bundled" in line and "HF_HUB_OFFLINE=1" in line, line
        assert "Warning" not in run.stderr and ".py:" not in run.stderr
        assert seconds < baseline + 8.0, (seconds, baseline)
        assert silent.connections() == 1
        run, _ = _cli(args, {**env, "HF_HUB_OFFLINE": "1"})
        assert run.returncode == 0 and "bundled" in run.stdout and run.stderr == ""
        assert silent.connections() == 0
    finally:
        silent.close()


def test_a_hub_request_waits_at_most_hub_timeout_once(fake_hub, tiny_model_dir, monkeypatch, fresh_cache):
    """A hub that answers too late (5 s) costs one wait of HUB_TIMEOUT (3 s), no retries, then a clear error."""
    import time

    monkeypatch.delenv("HF_HUB_ETAG_TIMEOUT")  # conftest's 2 s: here the package's own bound is what is tested
    fake_hub.add_repo("someone/slow", tiny_model_dir)
    fake_hub.mode = "hang"
    del fake_hub.requests[:]
    start = time.perf_counter()
    try:
        with pytest.raises(ModelNotFoundError, match=r"someone/slow@main: cannot get model\.onnx \(ReadTimeout"):
            Embedder("someone/slow", backend="onnx")
    finally:
        fake_hub.mode = "ok"
    seconds = time.perf_counter() - start
    assert 2.5 < seconds < 5.0, seconds
    assert fake_hub.asked("someone/slow") == ["main"], fake_hub.requests


def test_library_users_keep_a_warning_category_to_filter(fake_hub, bundled, fresh_cache, monkeypatch, offline):
    from audioembed.errors import ModelSourceWarning

    name = f"{hub.HUB_PREFIX}{hub.DEFAULT_MODEL}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # offline by choice: the bundled weights are what was asked for
        assert Embedder(name, backend="onnx").resolved.source == "bundled"
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(fake_hub, "mode", "error500")
    with pytest.warns(ModelSourceWarning, match="bundled") as caught:
        Embedder(name, backend="onnx")
    assert issubclass(caught[0].category, UserWarning)


@pytest.mark.parametrize("revision", ["../../x", "refs/../../x", "/etc/passwd", "a//b", "main/", "a\\b", "v1\n", "", "x" * 300])
def test_revisions_are_validated_before_any_lookup(fake_hub, revision, offline):
    """Offline, huggingface_hub reads CACHE/models--ORG--NAME/refs/REVISION: a `../` would read outside the cache."""
    before = len(fake_hub.requests)
    with pytest.raises(ModelError, match="not a valid revision"):
        Embedder("someone/tiny-a", revision=revision, backend="onnx")
    assert len(fake_hub.requests) == before


@pytest.mark.parametrize("revision", ["main", "v0.1.0", "refs/pr/1", "a" * 40, "release_2-x"])
def test_valid_revisions_pass_the_check(fake_hub, tiny_model_dir, revision):
    """A valid revision reaches the hub as given and loads the model stored at it."""
    fake_hub.add_repo("someone/revisions", tiny_model_dir, revision=revision)
    before = len(fake_hub.requests)
    e = Embedder("someone/revisions", revision=revision, backend="onnx")
    assert (e.resolved.source, e.resolved.revision) == ("hub", revision)
    assert fake_hub.asked("someone/revisions")[-1] == revision and len(fake_hub.requests) > before


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


def test_the_default_name_never_means_a_folder_in_the_working_directory(tiny_model_dir, tmp_path, monkeypatch, fake_hub):
    """A `./audioembed/audioembed-base/` where the user runs (a clone of this repo has `audioembed/`) must not
    replace the default model: not for Embedder(), its id, HEAR's load_model(""), nor what --init-from fetches."""
    from audioembed.integrations import hear

    planted = tmp_path / "audioembed" / "audioembed-base"
    shutil.copytree(tiny_model_dir, planted)
    monkeypatch.chdir(tmp_path)
    before = len(fake_hub.requests)
    loaded = [Embedder(backend="onnx"), Embedder(hub.DEFAULT_MODEL, backend="onnx"), hear.load_model("", backend="onnx").embedder]
    init_from, init_cfg = hub.fetch(hub.DEFAULT_MODEL, hub.DEFAULT_REVISION, "model.safetensors")  # as --init-from does
    for r, dim in [(e.resolved, e.dim) for e in loaded] + [(init_from, init_cfg.dim)]:
        assert (r.source, r.model_id, r.revision, dim) == ("bundled", hub.DEFAULT_MODEL, hub.DEFAULT_REVISION, 1024)
        assert r.folder == ROOT / "models" / "audioembed-base"
    assert fake_hub.requests[before:] == []
    local = Embedder("./audioembed/audioembed-base", backend="onnx")  # a path says it means the folder
    assert (local.resolved.source, local.resolved.folder.resolve(), local.dim) == ("local", planted, 32)
