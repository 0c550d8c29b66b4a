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
