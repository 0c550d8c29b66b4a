"""A killed `audioembed embed` job resumes to exactly what an uninterrupted run writes, with no temp files left."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audioembed import files
from audioembed.files import TEMP_SUFFIX

from conftest import noisy

N_FILES = 240
REPO = Path(__file__).resolve().parent.parent


def run_cli(root, out, model, *extra, **popen):
    """The real console entry point in a child process, so that SIGKILL hits it, not pytest."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "audioembed.cli", "embed", str(root), "-o", str(out), "-m", str(model)]
    # batch size 1: each window is computed alone, so a file's vector cannot depend on which run embedded it
    args += ["--backend", "onnx", "--batch-size", "1", "--workers", "1", "-q", *extra]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def outputs_of(out: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(out).as_posix(): np.load(p) for p in sorted(out.rglob("*.npy"))}


def test_sigkill_midway_then_resume(tmp_path, tiny_model_dir):
    root = tmp_path / "in"
    for i in range(N_FILES):
        folder = root / f"part{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"clip {i:03d}.wav", noisy(16000, 0.25 + 0.05 * (i % 7), seed=i), 16000, subtype="FLOAT")

    reference = tmp_path / "reference"
    proc = run_cli(root, reference, tiny_model_dir)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    out = tmp_path / "out"
    proc = run_cli(root, out, tiny_model_dir)
    deadline = time.monotonic() + 120
    while len(list(out.rglob("*.npy"))) < N_FILES // 5:  # kill only once some outputs exist
        assert proc.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "no outputs appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    finished = len(list(out.rglob("*.npy")))
    assert N_FILES // 5 <= finished < N_FILES, f"killed after {finished} of {N_FILES} files: not midway"

    proc = run_cli(root, out, tiny_model_dir)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, log
    assert f"{N_FILES - finished} embedded, {finished} skipped" in log
    expected, got = outputs_of(reference), outputs_of(out)
    assert sorted(got) == sorted(expected) and len(got) == N_FILES
    for name, array in expected.items():
        np.testing.assert_array_equal(got[name], array, err_msg=name)
    leftovers = [p for p in out.rglob("*") if p.name.endswith(TEMP_SUFFIX) or not p.name.endswith((".npy", "audioembed.json"))]
    assert [p for p in leftovers if p.is_file()] == []


@pytest.mark.parametrize("stack", [False, True])
def test_ctrl_c_says_what_is_done_and_the_same_command_resumes(tmp_path, tiny_model_dir, stack):
    root = tmp_path / "in"
    root.mkdir()
    n = 90
    for i in range(n):
        sf.write(root / f"clip {i:03d}.wav", noisy(16000, 0.25 + 0.05 * (i % 7), seed=i), 16000, subtype="FLOAT")
    extra = ["--stack"] if stack else []
    reference = tmp_path / "reference"
    proc = run_cli(root, reference, tiny_model_dir, *extra)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    out = tmp_path / "out"
    # Ctrl-C as a terminal sends it to a foreground job: were pytest a background job (SIGINT ignored, inherited),
    # the child would ignore it too and the test would say nothing about the CLI.
    proc = run_cli(root, out, tiny_model_dir, *extra, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while len(list(out.rglob("*.npy"))) < n // 5:  # per-file outputs (--stack: its parts) appear as files finish
        assert proc.poll() is None, "the job ended before it could be interrupted"
        assert time.monotonic() < deadline, "no outputs appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    log = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, log
    written = int(re.search(r"interrupted: (\d+) embedded and written", log).group(1))
    assert n // 5 <= written < n and "run the same command again" in log and "Traceback" not in log, log
    assert len(list(out.rglob("*.npy"))) == written

    proc = run_cli(root, out, tiny_model_dir, *extra)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0 and f"{n - written} embedded, {written} skipped" in log, log
    expected, got = outputs_of(reference), outputs_of(out)
    assert sorted(got) == sorted(expected) and len(got) == (1 if stack else n)
    for name, array in expected.items():
        np.testing.assert_array_equal(got[name], array, err_msg=name)
    if stack:
        assert (out / "index.csv").read_text() == (reference / "index.csv").read_text()


class Killed(BaseException):
    """Stands for SIGKILL at one point of a write: the test looks at the disk as the kill would leave it."""


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize("kill_at", ["mid-write", "before-rename"])
def test_a_write_killed_at_any_point_leaves_no_partial_output(tmp_path, monkeypatch, kill_at, existing):
    """Deterministic, unlike the SIGKILL race above: stop the write halfway through the data, and between the
    complete temp file and the rename; the final path must hold the old complete file or nothing."""
    target = tmp_path / "clip.npy"
    old = np.arange(4, dtype=np.float32)
    if existing:  # an --overwrite run replacing a finished output
        files.atomic_save(target, old)
    before = target.read_bytes() if existing else None
    seen = []

    def kill() -> None:
        seen.append(target.read_bytes() if target.exists() else None)
        raise Killed

    real_open = open

    class HalfWriter:
        def __init__(self, *args, **kwargs):
            self.f = real_open(*args, **kwargs)

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            kill()

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    if kill_at == "mid-write":
        monkeypatch.setattr(files, "open", HalfWriter, raising=False)
    else:
        monkeypatch.setattr(files.os, "replace", lambda *args: kill())
    with pytest.raises(Killed):
        files.atomic_save(target, np.arange(100_000, dtype=np.float32))
    assert seen == [before], "at the moment of the kill the final path held a partial or different file"
    monkeypatch.undo()
    assert (target.read_bytes() if target.exists() else None) == before
    assert [p.name for p in tmp_path.iterdir()] == (["clip.npy"] if existing else [])  # the temp file is cleaned up
