"""The documentation site builds strictly, documents every CLI option, and shows only pictures it has."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from audioembed.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def mkdocs_build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` without -q: -q hides the warnings and then exits 0 even in strict mode."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=root, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def build_problems(result: subprocess.CompletedProcess) -> list[str]:
    """What makes a build fail: a non-zero exit, or any WARNING line (a broken link is one)."""
    output = result.stdout + result.stderr
    problems = [line for line in output.splitlines() if "WARNING" in line]
    if result.returncode != 0:
        problems.append(f"mkdocs exited {result.returncode}")
    return problems


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    result = mkdocs_build(ROOT, tmp_path / "site")
    assert not build_problems(result), result.stdout + result.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "The k most cosine-similar collection rows" in api and "get_timestamp_embeddings" in api  # from docstrings
    assert (tmp_path / "site" / "img" / "map.png").is_file()


def test_the_docs_check_fails_on_a_broken_link(tmp_path):
    """The check above, on a two-page site whose link leaves the docs (as ../scripts/... did): it must fail."""
    pytest.importorskip("mkdocs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nnav:\n  - index.md\n  - b.md\n")
    (tmp_path / "docs" / "b.md").write_text("# B\n")
    (tmp_path / "docs" / "index.md").write_text("# A\n\n[fine](b.md)\n")
    assert not build_problems(mkdocs_build(tmp_path, tmp_path / "site"))
    (tmp_path / "docs" / "index.md").write_text("# A\n\n[data](../scripts/data/README.md)\n")
    problems = build_problems(mkdocs_build(tmp_path, tmp_path / "site"))
    assert any("../scripts/data/README.md" in p for p in problems), problems


def test_every_cli_option_is_in_the_cli_page():
    page = (DOCS / "cli.md").read_text()
    command = typer.main.get_command(app)
    missing, checked = [], 0
    for name, sub in command.commands.items():
        if f"## `audioembed {name}`" not in page:
            missing.append(f"section `audioembed {name}`")
        # param_type_name, not isinstance(click.Option): Typer 0.2x has its own copy of click, whose options
        # are no click.Option, and the check then saw none
        options = [opt for p in sub.params if p.param_type_name == "option" for opt in p.opts if opt.startswith("--")]
        assert options, f"no option seen for {name}"
        checked += len(options)
        missing += [f"{name} {opt}" for opt in options if opt != "--help" and opt not in page]
    assert not missing, f"add these to docs/cli.md: {missing}"
    assert checked > 50


def test_pictures_exist_and_are_used():
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    used = set(re.findall(r"\]\((img/[^)]+)\)", text))
    assert used, "the docs show no picture"
    assert all((DOCS / u).is_file() for u in used), used
    on_disk = {f"img/{p.name}" for p in (DOCS / "img").iterdir()}
    assert on_disk <= used, f"pictures no page shows: {sorted(on_disk - used)}"
    assert all((DOCS / u).stat().st_size < 300_000 for u in used), "keep committed pictures small"
