"""The documentation site builds strictly, documents every CLI option, and shows only pictures it has."""

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from audioembed.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "The k most cosine-similar collection rows" in api and "get_timestamp_embeddings" in api  # from docstrings
    assert (tmp_path / "site" / "img" / "map.png").is_file()


def test_every_cli_option_is_in_the_cli_page():
    page = (DOCS / "cli.md").read_text()
    command = typer.main.get_command(app)
    missing = []
    for name, sub in command.commands.items():
        if f"## `audioembed {name}`" not in page:
            missing.append(f"section `audioembed {name}`")
        missing += [f"{name} {opt}" for p in sub.params if isinstance(p, click.Option) for opt in p.opts
                    if opt.startswith("--") and opt != "--help" and opt not in page]
    assert not missing, f"add these to docs/cli.md: {missing}"


def test_pictures_exist_and_are_used():
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    used = set(re.findall(r"\]\((img/[^)]+)\)", text))
    assert used, "the docs show no picture"
    assert all((DOCS / u).is_file() for u in used), used
    on_disk = {f"img/{p.name}" for p in (DOCS / "img").iterdir()}
    assert on_disk <= used, f"pictures no page shows: {sorted(on_disk - used)}"
    assert all((DOCS / u).stat().st_size < 300_000 for u in used), "keep committed pictures small"
