"""`audioembed embed` and `audioembed info` end to end on generated folders."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioembed import Embedder, console, outputs
from audioembed.cli import app

import reference
from conftest import noisy, tone

runner = CliRunner()


@pytest.fixture
def audio_tree(tmp_path):
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    sf.write(root / "a.wav", noisy(16000, 2.0), 16000)
    sf.write(root / "sub" / "b.flac", np.stack([tone(440, 44100, 1.0)] * 2, axis=1), 44100)
    sf.write(root / "sub" / "deeper" / "c d é.ogg", tone(880, 8000, 3.0), 8000)
    sf.write(root / "sub" / "int16.wav", (tone(220, 48000, 0.5) * 30000).astype(np.int16), 48000)
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    (root / "notes.txt").write_text("not audio")
    return root


def embed(*args):
    return runner.invoke(app, ["embed", *map(str, args)])


def test_folder_with_a_corrupt_file(audio_tree, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    result = embed(audio_tree, "-o", out, "-m", tiny_model_dir, "--backend", "onnx", "-q")
    assert result.exit_code == 1
    assert "corrupt.wav" in result.output and "1 failed" in result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy"))
    assert written == ["a.npy", "sub/b.npy", "sub/deeper/c d é.npy", "sub/int16.npy"]
    expected = Embedder(tiny_model_dir, backend="onnx").embed(audio_tree / "sub" / "b.flac")
    np.testing.assert_allclose(np.load(out / "sub" / "b.npy"), expected, atol=1e-6)  # batching: float rounding only
    assert not list(out.rglob("*tmp*"))


def test_rerun_skips_finished_outputs(audio_tree, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    (audio_tree / "corrupt.wav").unlink()
    assert embed(audio_tree, "-o", out, "-m", tiny_model_dir, "-q").exit_code == 0
    stamp = (out / "a.npy").stat().st_mtime_ns
    (out / "sub" / "b.npy").unlink()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is free, as a killed run's is
    (out / f".a.npy.{dead.pid}.audioembed-tmp").write_bytes(b"half")  # left by a killed run
    result = embed(audio_tree, "-o", out, "-m", tiny_model_dir, "-q")
    assert result.exit_code == 0 and "1 embedded, 3 skipped" in result.output
    assert (out / "a.npy").stat().st_mtime_ns == stamp and (out / "sub" / "b.npy").exists()
    assert not list(out.rglob("*audioembed-tmp"))
    result = embed(audio_tree, "-o", out, "-m", tiny_model_dir, "-q", "--overwrite")
    assert "4 embedded" in result.output


def test_frames_output(audio_tree, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    embed(audio_tree / "a.wav", "-o", out, "-m", tiny_model_dir, "--frames", "-q")
    frames, stamps = np.load(out / "a.frames.npy"), np.load(out / "a.timestamps.npy")
    assert frames.shape == (25, 32) and stamps.shape == (25,)
    np.testing.assert_allclose(frames, reference.frames(tiny_model_dir, noisy(16000, 2.0)), rtol=0, atol=1e-5)
    np.testing.assert_allclose(stamps, 35.0 + 80.0 * np.arange(25))
    np.testing.assert_allclose(np.load(out / "a.npy"), frames.max(0) + frames.mean(0), atol=1e-5)


def test_stacked_output(audio_tree, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    result = embed(audio_tree, "-o", out, "-m", tiny_model_dir, "--stack", "-q")
    assert result.exit_code == 1
    matrix = np.load(out / "embeddings.npy")
    index = (out / "index.csv").read_text().splitlines()
    assert matrix.shape == (4, 32) and index[0] == "row,path" and len(index) == 5
    single = Embedder(tiny_model_dir)
    paths = [line.split(",", 1)[1] for line in index[1:]]
    assert [row.split(",", 1)[0] for row in index[1:]] == ["0", "1", "2", "3"]
    assert sorted(Path(p).name for p in paths) == ["a.wav", "b.flac", "c d é.ogg", "int16.wav"]
    for row, path in enumerate(paths):  # every row, each against its own file embedded alone
        source = Path(path) if Path(path).is_absolute() else audio_tree / path
        np.testing.assert_allclose(matrix[row], single.embed(source), rtol=0, atol=1e-5, err_msg=path)


def test_colliding_output_names_keep_their_extension_and_a_note_says_so(tmp_path, tiny_model_dir):
    """wrong.ogg + wrong.wav (shipped together by real packages) both embed; what still clashes fails."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "x.wav", tone(440), 16000)
    sf.write(root / "x.flac", tone(880), 16000)
    sf.write(root / "y.wav", tone(660), 16000)
    sf.write(root / "sub" / "z.wav", tone(330), 16000)
    sf.write(root / "sub" / "Z.WAV", tone(550), 16000)  # one file on a case-insensitive disk: still refused
    out = tmp_path / "out"
    result = embed(root, "-o", out, "-m", tiny_model_dir)
    assert result.exit_code == 1 and "2 inputs map to" in result.output and "2 failed" in result.output
    assert f"note: {root / 'x.flac'}, {root / 'x.wav'} share an output name; their outputs keep the extension (x.flac.npy, x.wav.npy)" in result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy")) == ["x.flac.npy", "x.wav.npy", "y.npy"]
    e = Embedder(tiny_model_dir)
    for name in ("x.wav", "x.flac"):
        np.testing.assert_allclose(np.load(out / f"{name}.npy"), e.embed(root / name), atol=1e-5)
    assert np.abs(np.load(out / "x.wav.npy") - np.load(out / "x.flac.npy")).max() > 0.01  # not one vector twice


def test_no_audio_found_is_an_error(tmp_path, tiny_model_dir):
    (tmp_path / "in").mkdir()
    result = embed(tmp_path / "in", "-o", tmp_path / "out", "-m", tiny_model_dir)
    assert result.exit_code == 2 and "no audio files" in result.output


def test_missing_model_is_a_clear_error(tmp_path, audio_tree):
    result = embed(audio_tree, "-o", tmp_path / "out", "-m", tmp_path / "nowhere")
    assert result.exit_code == 2 and "not a model folder" in result.output


def test_info_prints_model_and_hashes(tiny_model_dir):
    result = runner.invoke(app, ["info", "-m", str(tiny_model_dir), "--backend", "onnx"])
    assert result.exit_code == 0
    assert "onnx (cpu, f32)" in result.output and "dim" in result.output
    assert result.output.count("(verified)") == 2


def test_stack_resumes_and_overwrite_means_what_it_means_without_stack(audio_tree, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    (audio_tree / "corrupt.wav").unlink()
    args = [audio_tree, "-o", out, "-m", tiny_model_dir, "--stack", "-q", "--batch-size", "1"]
    first = embed(*args)
    assert first.exit_code == 0 and "4 embedded, 0 skipped" in first.output
    matrix, index = np.load(out / "embeddings.npy"), (out / "index.csv").read_text()
    again = embed(*args)
    assert again.exit_code == 0 and "0 embedded, 4 skipped" in again.output, again.output
    assert (out / "index.csv").read_text() == index
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), matrix)
    sf.write(audio_tree / "sub" / "new.wav", tone(523, 16000, 1.5), 16000)
    more = embed(*args)
    assert more.exit_code == 0 and "1 embedded, 4 skipped" in more.output, more.output
    grown, rows = np.load(out / "embeddings.npy"), (out / "index.csv").read_text().splitlines()[1:]
    assert grown.shape == (5, 32) and len(rows) == 5 and rows[-1].endswith("new.wav") is False  # in folder order
    old = {r.split(",", 1)[1]: matrix[i] for i, r in enumerate(index.splitlines()[1:])}
    for i, r in enumerate(rows):
        path = r.split(",", 1)[1]
        if path in old:
            np.testing.assert_array_equal(grown[i], old[path])  # kept, not recomputed
    np.testing.assert_allclose(grown[rows.index(next(r for r in rows if r.endswith("new.wav")))],
                               Embedder(tiny_model_dir, backend="onnx").embed(audio_tree / "sub" / "new.wav"), atol=1e-6)
    assert "5 embedded, 0 skipped" in embed(*args, "--overwrite").output
    assert sorted(p.name for p in out.iterdir()) == ["audioembed.json", "embeddings.npy", "index.csv"]  # parts cleaned up
    (out / ".audioembed-parts").mkdir()
    part = f"{outputs.input_key(audio_tree / 'a.wav')}.npy"  # parts are named by their input's identity
    (out / ".audioembed-parts" / part).write_bytes(b"\x93NUMPY cut short by a power loss")  # parts are not fsynced
    broken = embed(*args)
    assert broken.exit_code == 2 and f"{part}: unreadable" in broken.output and "--overwrite" in broken.output
    assert "5 embedded, 0 skipped" in embed(*args, "--overwrite").output


def test_progress_count_equals_the_summary_count(tmp_path, tiny_model_dir):
    root = tmp_path / "in"
    root.mkdir()
    for name in ("x.wav", "X.WAV", "y.wav", "z.wav"):  # x and X: one output name on some disks, refused
        sf.write(root / name, tone(440), 16000)
    (root / "bad.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    out = tmp_path / "out"
    embed(root / "z.wav", "-o", out, "-m", tiny_model_dir, "-q")
    result = embed(root, "-o", out, "-m", tiny_model_dir)
    assert result.exit_code == 1
    done, total = map(int, __import__("re").search(r" (\d+)/(\d+) ", result.output).groups())
    assert "1 embedded, 1 skipped (already done), 3 failed" in result.output, result.output
    assert done == total == 1 + 3


def test_quiet_silences_decoder_noise_and_noise_names_its_file(tmp_path, tiny_model_dir):
    """libmpg123 (inside libsndfile) writes to the process's stderr itself; -q must silence it too."""
    import os
    import subprocess
    import sys

    root = tmp_path / "in"
    root.mkdir()
    sf.write(root / "clean.wav", tone(440), 16000)
    sf.write(root / "damaged.mp3", tone(440, 16000, 3.0), 16000, format="MP3")
    data = (root / "damaged.mp3").read_bytes()
    (root / "damaged.mp3").write_bytes(data[: len(data) // 2] + bytes(range(256)) + data[len(data) // 2 :])
    args = [sys.executable, "-m", "audioembed.cli", "embed", str(root), "-o", str(tmp_path / "out"), "-m", str(tiny_model_dir), "--workers", "1"]
    loud = subprocess.run(args + ["--overwrite"], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0, loud.stderr
    noise = [line for line in loud.stderr.splitlines() if "Illegal Audio-MPEG-Header" in line or "libmpg123" in line]
    assert noise and all(line.startswith(f"{root / 'damaged.mp3'}: decoder: ") for line in noise), loud.stderr
    quiet = subprocess.run(args + ["--overwrite", "-q"], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr.strip().splitlines() == ["2 embedded, 0 skipped (already done), 0 failed -> " + str(tmp_path / "out")], quiet.stderr


def write_with_pyav(path, wave, sr, codec):
    """m4a / webm files as phones and browsers make them, encoded by PyAV's own FFmpeg (no ffmpeg binary needed)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(wave[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_m4a_and_webm_through_pyav_and_without_it_a_hint(tmp_path, tiny_model_dir, monkeypatch):
    pytest.importorskip("av")
    root = tmp_path / "in"
    root.mkdir()
    wave = noisy(48000, 2.0)
    sf.write(root / "ref.wav", wave, 48000)
    write_with_pyav(root / "phone.m4a", wave, 48000, "aac")
    write_with_pyav(root / "call.webm", wave, 48000, "libopus")
    (root / "cover.jpg").write_bytes(b"\xff\xd8 not audio")
    out = tmp_path / "out"
    result = embed(root, "-o", out, "-m", tiny_model_dir, "--backend", "onnx")
    assert result.exit_code == 0, result.output
    assert "3 embedded" in result.output and "left out (not audio by extension): " in result.output and "cover.jpg" in result.output
    ref = np.load(out / "ref.npy")
    for name in ("phone", "call"):
        vector = np.load(out / f"{name}.npy")
        assert np.dot(vector, ref) / np.linalg.norm(vector) / np.linalg.norm(ref) > 0.98, name  # lossy, same sound

    monkeypatch.setitem(__import__("sys").modules, "av", None)  # PyAV not installed
    result = embed(root, "-o", tmp_path / "out2", "-m", tiny_model_dir, "--backend", "onnx", "-q")
    assert result.exit_code == 1 and "1 embedded, 0 skipped (already done), 2 failed" in result.output
    for name in ("phone.m4a", "call.webm"):
        line = next(line for line in result.output.splitlines() if name in line)
        assert 'pip install ".[av]"' in line and "PyAV" in line, line


def test_the_same_file_given_twice_is_one_job(tmp_path, tiny_model_dir, monkeypatch):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    sf.write(root / "x.wav", tone(440), 16000)
    sf.write(root / "sub" / "y.wav", tone(660), 16000)
    monkeypatch.chdir(tmp_path)
    for args in (["in/x.wav", "in/x.wav"], ["in", "./in/"], ["in/x.wav", str(root / "x.wav"), "in"]):
        out = tmp_path / f"out{len(args)}-{args[1][:2]}"
        result = embed(*args, "-o", out, "-m", tiny_model_dir, "-q", "--backend", "onnx")
        assert result.exit_code == 0, result.output
        assert "0 failed" in result.output
        assert np.load(out / "x.npy").shape == (32,)
    result = embed("in", "./in/", "-o", tmp_path / "stacked", "-m", tiny_model_dir, "-q", "--backend", "onnx", "--stack")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "stacked" / "embeddings.npy").shape == (2, 32)


def test_file_names_that_are_not_utf8(tmp_path, tiny_model_dir):
    """Each raw name keeps its own output (same bytes, .npy), messages escape it, --stack records it."""
    root = tmp_path / "in"
    root.mkdir()
    names = [os.fsdecode(b"\xff.wav"), os.fsdecode(b"\xfe.wav"), os.fsdecode(b"caf\xe9.wav")]
    for i, name in enumerate(names):
        sf.write(root / "plain.wav", tone(300 + 100 * i), 16000)  # soundfile itself cannot encode such a name
        os.rename(root / "plain.wav", root / name)
    (root / os.fsdecode(b"bad\xff\x1b[2J.wav")).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk" * 10)
    out = tmp_path / "out"
    result = embed(root, "-o", out, "-m", tiny_model_dir, "-q", "--backend", "onnx")
    assert result.exit_code == 1 and "3 embedded" in result.output and "\x1b" not in result.output
    assert "bad\\xff\\x1b[2J.wav: not a readable audio file" in result.output
    assert sorted(os.listdir(os.fsencode(out))) == sorted([b"\xff.npy", b"\xfe.npy", b"caf\xe9.npy", b"audioembed.json"])
    result = embed(root, "-o", tmp_path / "stacked", "-m", tiny_model_dir, "-q", "--backend", "onnx", "--stack")
    assert b"\xff.wav" in (tmp_path / "stacked" / "index.csv").read_bytes()


def test_info_survives_an_unreadable_extra_file(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    from audioembed import model_folder

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "extra.bin").write_bytes(b"x")
    (folder / "extra.bin").chmod(0)
    if os.geteuid() == 0:  # root reads every file: deny it the way the kernel would
        real = model_folder.sha256

        def sha256(path):
            if path.name == "extra.bin":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(model_folder, "sha256", sha256)
    result = runner.invoke(app, ["info", "-m", str(folder), "--backend", "onnx"])
    assert result.exit_code == 0, result.output
    assert "extra.bin" in result.output and "unreadable (Permission denied)" in result.output
    assert result.output.count("(verified)") == 2


def test_stack_and_frames_together_are_refused(audio_tree, tiny_model_dir, tmp_path):
    result = embed(audio_tree, "-o", tmp_path / "out", "-m", tiny_model_dir, "--stack", "--frames")
    assert result.exit_code == 2 and "--stack and --frames cannot be combined" in result.output
    assert not (tmp_path / "out").exists()


def test_local_folder_without_the_backends_weights(audio_tree, tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "torch-only"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.onnx").unlink()
    result = embed(audio_tree, "-o", tmp_path / "out", "-m", folder, "--backend", "onnx", "-q")
    assert result.exit_code == 2 and f"{folder}: has no model.onnx; choose the other backend" in result.output
    assert embed(audio_tree / "a.wav", "-o", tmp_path / "out", "-m", folder, "--backend", "torch", "-q").exit_code == 0


def test_the_progress_eta_counts_audio_seconds_not_files(tmp_path, tiny_model_dir, monkeypatch):
    """A folder of short clips and one long recording: the bar advances by each file's audio seconds (from its
    header), so the ETA is not 1 s when the last, longest file has most of the work left."""
    clips = tmp_path / "in"
    clips.mkdir()
    for name, seconds in (("a.wav", 0.5), ("b.wav", 0.25), ("long.flac", 6.0)):
        sf.write(clips / name, noisy(seconds=seconds, seed=len(name)), 16000)
    calls = {}
    real = console.progress

    def recording(files, disable, completed=0, seconds=None):
        calls.update(files=files, seconds=seconds, weights=[])
        with real(files, disable, completed, seconds) as advance:
            def advance_and_record(weight=1.0):
                calls["weights"].append(weight)
                advance(weight)
            yield advance_and_record

    monkeypatch.setattr(console, "progress", __import__("contextlib").contextmanager(recording))
    result = runner.invoke(app, ["embed", str(clips), "-o", str(tmp_path / "out"), "-m", str(tiny_model_dir), "--backend", "onnx"])
    assert result.exit_code == 0, result.output
    assert calls["files"] == 3 and calls["seconds"] == pytest.approx(6.75)
    assert sorted(calls["weights"]) == pytest.approx([0.25, 0.5, 6.0])


def test_audio_seconds_reads_headers_and_falls_back_to_the_size(tmp_path):
    sf.write(tmp_path / "x.wav", np.zeros(16000 * 3, np.float32), 16000)
    assert console.audio_seconds(tmp_path / "x.wav") == pytest.approx(3.0)
    (tmp_path / "y.m4a").write_bytes(b"\0" * 64000)  # not a libsndfile format: 64 kB at 32 kB/s
    assert console.audio_seconds(tmp_path / "y.m4a") == pytest.approx(2.0)
    assert console.audio_seconds(tmp_path / "gone.wav") == pytest.approx(0.1)


def test_a_fallback_note_is_one_line_and_silent_under_quiet(capsys):
    """Where a model came from, when it was a fallback: one `note:` line, none with -q; other warnings pass through."""
    import warnings

    from audioembed import console
    from audioembed.errors import ModelSourceWarning

    for quiet, shown in ((False, True), (True, False)):
        with console.model_notes(quiet):
            warnings.warn("hub unreachable: the cached copy of org/m was used", ModelSourceWarning)
        err = capsys.readouterr().err
        assert ("note: hub unreachable: the cached copy of org/m was used" in err) == shown, (quiet, err)
        assert err.count("\n") == (1 if shown else 0)
