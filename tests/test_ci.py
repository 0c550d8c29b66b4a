"""The CI machinery itself: AUDIOEMBED_REQUIRE_EXTRAS turns an optional package's skip into a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SKIPPING = '''
import pytest

def test_needs_a_missing_package():
    pytest.importorskip("audioembed_no_such_package")

def test_a_peer_skip():
    pytest.skip("no peer installed (pip install resemblyzer torchcrepe)")

def test_runs():
    assert 1 + 1 == 2
'''

SKIPPING_MODULE = '''
import pytest

pytest.importorskip("audioembed_no_such_module")

def test_never_collected():
    pass
'''


def run_pytest(folder: Path, require: bool, *names: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AUDIOEMBED_REQUIRE_EXTRAS"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # hypothesis, anyio, ...: seconds of start-up each run
    if require:
        env["AUDIOEMBED_REQUIRE_EXTRAS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *names],
                          cwd=folder, env=env, capture_output=True, text=True)


def test_required_extras_turn_skips_into_failures(tmp_path):
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(SKIPPING)
    (tmp_path / "test_module_skip.py").write_text(SKIPPING_MODULE)

    relaxed = run_pytest(tmp_path, False, "test_skips.py", "test_module_skip.py")
    assert relaxed.returncode == 0, relaxed.stdout
    assert "1 passed, 3 skipped" in relaxed.stdout

    strict = run_pytest(tmp_path, True, "test_skips.py")
    assert strict.returncode == 1, strict.stdout
    assert "1 failed, 1 passed, 1 skipped" in strict.stdout  # the peer's skip is expected: check_peers.sh runs it
    assert "FAILED test_skips.py::test_needs_a_missing_package" in strict.stdout
    assert "AUDIOEMBED_REQUIRE_EXTRAS=1 but this skipped: could not import 'audioembed_no_such_package'" in strict.stdout

    module = run_pytest(tmp_path, True, "test_module_skip.py")
    assert module.returncode != 0, module.stdout
    assert "could not import 'audioembed_no_such_module'" in module.stdout


STUB_PYTHON = """#!/usr/bin/env bash
# Stands in for .venv/bin/python: logs each call; the reachability probe (python - URL) answers $PROBE.
echo "$*" >> "$CALLS"
if [ "$1" = "-" ]; then cat > /dev/null; [ "$PROBE" = up ] && exit 0; [ "$PROBE" = hang ] && sleep 60; exit 1; fi
exit 0
"""


def run_test_sh(tmp_path: Path, probe: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """scripts/test.sh in a copy of the repository's layout whose .venv/bin/python is a stub."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(TESTS.parent / "scripts" / "test.sh", tmp_path / "scripts" / "test.sh")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STUB_PYTHON)
    python.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "CALLS": str(calls), "PROBE": probe}
    result = subprocess.run(["bash", str(tmp_path / "scripts" / "test.sh"), "-x"], env=env, capture_output=True,
                            text=True, timeout=60)
    return result, calls.read_text().splitlines()


def test_test_sh_takes_the_cpu_torch_where_its_index_answers(tmp_path):
    result, calls = run_test_sh(tmp_path, "up")
    assert result.returncode == 0, result.stderr
    torch = [c for c in calls if "torch==" in c]
    assert torch == ["-m pip install -q --timeout 30 --retries 1 --index-url https://download.pytorch.org/whl/cpu torch==2.13.0"]
    assert calls[-1] == "-m pytest -q -m not slow -x"  # the README's command leaves the slow checks to CI


def test_test_sh_falls_back_to_the_pinned_torch_quickly_where_the_index_is_unreachable(tmp_path):
    import time

    start = time.monotonic()
    result, calls = run_test_sh(tmp_path, "hang")  # an index that accepts and never answers
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 30
    assert [c for c in calls if "torch==" in c] == ["-m pip install -q torch==2.13.0"]
    assert "unreachable" in result.stderr and calls[-1] == "-m pytest -q -m not slow -x"


def test_every_planted_bug_still_applies_and_every_module_has_one():
    """scripts/mutants.py --check: a refactor that moved a mutant's text makes its bug unplantable, silently."""
    import re

    result = subprocess.run([sys.executable, "scripts/mutants.py", "--check"], cwd=TESTS.parent, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "modules without one: none" in result.stdout
    assert int(re.search(r"(\d+) mutants over", result.stdout).group(1)) >= 40


def test_mutants_run_the_tests_that_import_the_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutants", TESTS.parent / "scripts" / "mutants.py")
    mutants = importlib.util.module_from_spec(spec)
    sys.modules["mutants"] = mutants  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mutants)
    finally:
        del sys.modules["mutants"]
    assert "tests/test_search.py" in mutants.test_files_for("audioembed/search.py")
    assert "tests/test_train.py" in mutants.test_files_for("audioembed/train/byol.py")
    assert "tests/test_docs.py" not in mutants.test_files_for("audioembed/train/byol.py")
