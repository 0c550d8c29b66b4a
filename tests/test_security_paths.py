"""Output paths: odd input names never write outside OUT, collisions anywhere in a job are reported
instead of overwritten, write failures fail one file, and cleanup never touches a live job's temp files."""

import os
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from audioembed import Embedder, files, outputs
from audioembed.cli import app

from conftest import tone

runner = CliRunner()


def embed(*args):
    return runner.invoke(app, ["embed", *map(str, args)])


def files_under(root):
    """The files under root, but OUT's record of its model (audioembed.json)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != outputs.RECORD)


ODD_NAMES = [
    "with space.wav", " leading space.wav", ".hidden.wav", "..wav", "...wav", "-o.wav", "--overwrite.wav",
    "ünïcödé 音.wav", "emoji 🎵.flac", "semi;colon$(x).wav", "quote'\"`.wav", "back\\slash.wav",
    "new\nline.wav", "tab\t.wav", "%s%n.wav", "x.npy.wav", "UPPER.WAV", "é" * 125 + ".wav",
]


def test_odd_names_stay_inside_out(tmp_path, tiny_model_dir):
    root, out = tmp_path / "in", tmp_path / "out"
    (root / "sub.." / " .. " / "x...").mkdir(parents=True)  # hidden folders (.x) are skipped: see test_stack_outputs
    for i, name in enumerate(ODD_NAMES):
        fmt = "FLAC" if name.endswith(".flac") else "WAV"  # soundfile cannot guess it for "..wav"
        sf.write(root / name, tone(200 + 10 * i, 16000, 0.2), 16000, format=fmt)
    sf.write(root / "sub.." / " .. " / "x..." / "deep.wav", tone(300, 16000, 0.2), 16000)
    before = files_under(tmp_path)
    result = embed(root, "-o", out, "-m", tiny_model_dir, "--backend", "onnx", "-q")
    assert result.exit_code == 0, result.output
    written = files_under(out)
    assert len(written) == len(ODD_NAMES) + 1
    assert "sub../ .. /x.../deep.npy" in written and ("é" * 125 + ".npy") in written
    embedder = Embedder(tiny_model_dir, backend="onnx")
    for rel in written:
        assert (out / rel).resolve().is_relative_to(out.resolve())
        source = next(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).with_suffix(".npy").as_posix() == rel)
        np.testing.assert_allclose(np.load(out / rel), embedder.embed(source), rtol=0, atol=1e-6)
    assert [f for f in files_under(tmp_path) if not f.startswith("out/")] == before  # nothing written elsewhere


def test_symlinked_output_folder_pointing_outside_is_refused(tmp_path, tiny_model_dir):
    root, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    (root / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)
    sf.write(root / "sub" / "x.wav", tone(440), 16000)
    sf.write(root / "y.wav", tone(440), 16000)
    result = embed(root, "-o", out, "-m", tiny_model_dir, "--backend", "onnx", "-q")
    assert result.exit_code == 1 and "would be outside" in result.output
    assert list(elsewhere.iterdir()) == [] and (out / "y.npy").is_file()


def _write_all(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, tone(440, 16000, 0.2), 16000)


@pytest.mark.parametrize(
    "names, frames, clashing, kept",
    [
        # far apart in the sorted file list, not neighbours: both keep their extension
        (["s/x.flac", *[f"s/x.g{i:02d}.wav" for i in range(30)], "s/x.wav"], False, [], ["s/x.flac.npy", "s/x.wav.npy"]),
        (["sub/Take.wav", "sub/m.wav", "sub/take.WAV"], False, ["sub/Take.wav", "sub/take.WAV"], []),  # one file on some disks
        ([unicodedata.normalize("NFC", "café.wav"), unicodedata.normalize("NFD", "café.flac")], False, [],
         [unicodedata.normalize("NFC", "café.wav.npy"), unicodedata.normalize("NFD", "café.flac.npy")]),
        (["x.wav", "x.frames.wav", "y.wav"], True, [], ["x.wav.npy", "x.frames.wav.npy", "y.npy"]),
        (["x.wav", "x.timestamps.ogg"], True, [], ["x.wav.npy", "x.timestamps.ogg.npy"]),
        (["x.wav", "x.ogg", "X.ogg"], False, ["x.ogg", "X.ogg"], ["x.wav.npy"]),
    ],
)
def test_colliding_outputs_are_kept_apart_or_reported_never_overwritten(tmp_path, tiny_model_dir, names, frames, clashing, kept):
    root, out = tmp_path / "in", tmp_path / "out"
    _write_all(root, names)
    flags = ["--frames"] if frames else []
    result = embed(root, "-o", out, "-m", tiny_model_dir, "--backend", "onnx", "-q", *flags)
    assert result.exit_code == (1 if clashing else 0), result.output
    assert f"{len(clashing)} failed" in result.output
    for name in clashing:
        assert f"{root / name}: {len(clashing)} inputs map to" in result.output
    written = set(files_under(out))
    clips = {n for n in written if not n.endswith((".frames.npy", ".timestamps.npy"))}
    assert set(kept) <= clips and len(clips) == len(names) - len(clashing)
    for name in clashing:
        assert str(os.path.splitext(name)[0]) + ".npy" not in written and name + ".npy" not in written
    if frames:
        assert {n[: -len(".npy")] + ".frames.npy" for n in kept} <= written


def test_several_input_folders_each_get_their_own_subfolder(tmp_path, tiny_model_dir):
    """As `cp -r a/sfx b/music out` does; two folders of one name clash and are refused, not merged."""
    _write_all(tmp_path / "a" / "sfx", ["x.wav", "z.wav"])
    _write_all(tmp_path / "b" / "music", ["x.wav"])
    _write_all(tmp_path / "c" / "music", ["y.wav"])
    _write_all(tmp_path / "d" / "music", ["y.wav"])
    sf.write(tmp_path / "b" / "music" / "x.wav", tone(880, 16000, 0.2), 16000)
    out = tmp_path / "out"
    result = embed(tmp_path / "a" / "sfx", tmp_path / "b" / "music", "-o", out, "-m", tiny_model_dir, "-q", "--backend", "onnx")
    assert result.exit_code == 0, result.output
    assert files_under(out) == ["music/x.npy", "sfx/x.npy", "sfx/z.npy"]
    e = Embedder(tiny_model_dir, backend="onnx")
    np.testing.assert_allclose(np.load(out / "music" / "x.npy"), e.embed(tmp_path / "b" / "music" / "x.wav"), atol=1e-6)
    np.testing.assert_allclose(np.load(out / "sfx" / "x.npy"), e.embed(tmp_path / "a" / "sfx" / "x.wav"), atol=1e-6)
    result = embed(tmp_path / "c" / "music", tmp_path / "d" / "music", "-o", tmp_path / "out2", "-m", tiny_model_dir, "-q")
    assert result.exit_code == 1 and "2 failed" in result.output and "2 inputs map to" in result.output
    assert files_under(tmp_path / "out2") == []


def test_write_failures_fail_that_file_only(tmp_path, tiny_model_dir):
    root, out = tmp_path / "in", tmp_path / "out"
    _write_all(root, ["blocked/a.wav", "ok.wav"])
    sf.write(root / ("é" * 125 + ".wav"), tone(440, 16000, 0.2), 16000)  # x.frames.npy passes NAME_MAX
    out.mkdir()
    (out / "blocked").write_text("a file where a folder should be")
    result = embed(root, "-o", out, "-m", tiny_model_dir, "-q", "--backend", "onnx", "--frames")
    assert result.exit_code == 1, result.output
    assert "2 failed" in result.output and "cannot write" in result.output
    assert str(root / "blocked" / "a.wav") in result.output
    assert {"ok.npy", "ok.frames.npy", "ok.timestamps.npy"} <= set(files_under(out))
    assert not [f for f in files_under(out) if f.endswith(files.TEMP_SUFFIX)]


def test_unwritable_output_folder_is_a_clear_error(tmp_path, tiny_model_dir):
    _write_all(tmp_path / "in", ["a.wav"])
    (tmp_path / "file").write_text("")
    result = embed(tmp_path / "in", "-o", tmp_path / "file" / "out", "-m", tiny_model_dir, "-q")
    assert result.exit_code == 2 and "cannot create the output folder" in result.output


def test_temp_names_stay_short(tmp_path):
    path = tmp_path / ("é" * 125 + ".npy")
    assert len(files.temp_path(path).name.encode()) < 64
    files.atomic_save(path, np.zeros(3, np.float32))
    np.testing.assert_array_equal(np.load(path), np.zeros(3, np.float32))
    assert files_under(tmp_path) == [path.name]


def test_cleanup_keeps_temp_files_of_a_live_job(tmp_path, tiny_model_dir):
    _write_all(tmp_path / "in", ["a.wav"])
    out = tmp_path / "out"
    out.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        live_tmp = out / f".0123456789ab.{live.pid}{files.TEMP_SUFFIX}"
        dead_tmp = out / f".ba9876543210.{dead.pid}{files.TEMP_SUFFIX}"
        odd_tmp = out / f".0123456789ab.0{files.TEMP_SUFFIX}"
        for p in (live_tmp, dead_tmp, odd_tmp):
            p.write_bytes(b"half")
        result = embed(tmp_path / "in", "-o", out, "-m", tiny_model_dir, "-q", "--backend", "onnx")
        assert result.exit_code == 0
        assert live_tmp.exists() and not dead_tmp.exists() and not odd_tmp.exists()
    finally:
        live.kill()
        live.wait()
    assert files.remove_stale_temp_files(out) == 1 and not live_tmp.exists()


def test_stack_write_failure_is_a_clear_error(tmp_path, tiny_model_dir):
    _write_all(tmp_path / "in", ["a.wav"])
    out = tmp_path / "out"
    (out / "embeddings.npy").mkdir(parents=True)  # a folder where the matrix should go
    result = embed(tmp_path / "in", "-o", out, "-m", tiny_model_dir, "-q", "--stack", "--backend", "onnx")
    assert result.exit_code == 2 and "cannot write embeddings.npy" in result.output
    assert not [f for f in files_under(out) if f.endswith(files.TEMP_SUFFIX)]


NAME_PART = st.one_of(
    st.text(st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]), min_size=1, max_size=20),
    # raw bytes, as a disk may hold them: Python's str carries the ones that are not UTF-8 as surrogates
    st.binary(min_size=1, max_size=20).filter(lambda b: b"/" not in b and b"\0" not in b).map(os.fsdecode),
).filter(lambda s: s not in (".", ".."))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(
        st.tuples(st.lists(NAME_PART, max_size=2), NAME_PART, st.sampled_from([".wav", ".WAV", ".flac", ".ogg", ".mp3"])),
        min_size=1, max_size=12,
    ),
    frames=st.booleans(),
)
def test_planned_outputs_stay_inside_out_and_never_coincide(tmp_path_factory, names, frames):
    root = tmp_path_factory.mktemp("in")
    out = root.parent / (root.name + "-out")
    for folders, stem, ext in names:
        path = root.joinpath(*folders, stem + ext)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError:  # a file where a folder is wanted
            continue
    jobs, failures = outputs.plan([root], out, frames=frames)
    assert len(jobs) + len(failures) == len(files.find_audio(root))
    keys = [unicodedata.normalize("NFC", os.fspath(t)).casefold() for j in jobs for t in j.targets()]
    assert len(keys) == len(set(keys)), "two jobs would write one file"
    for job in jobs:
        for target in job.targets():
            assert out.resolve() in target.resolve().parents


def test_unreadable_folders_are_reported_not_skipped(tmp_path, tiny_model_dir, monkeypatch):
    _write_all(tmp_path / "in", ["a.wav", "locked/b.wav"])
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "locked":  # as chmod 000 would, for a user other than root
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = embed(tmp_path / "in", "-o", tmp_path / "out", "-m", tiny_model_dir, "-q", "--backend", "onnx")
    assert result.exit_code == 1 and "locked: cannot read this folder" in result.output
    assert files_under(tmp_path / "out") == ["a.npy"]
