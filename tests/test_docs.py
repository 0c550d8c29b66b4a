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


# The manual's shape (issue 38): a README that reads as a product page, a training page that explains training,
# and the studies on pages of their own, each with its results file, all linked both ways.

MD_PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md"), *(DOCS / "experiments").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """The ids Python-Markdown's toc gives the page's headings (GitHub's are the same for these), plus explicit ids."""
    from markdown.extensions.toc import slugify

    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    ids = {slugify(re.sub(r"[`*]", "", h), "-") for h in re.findall(r"^#+\s+(.*?)\s*$", text, flags=re.M)}
    return ids | set(re.findall(r'<a id="([^"]+)"', text))


def test_readme_is_a_product_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 260, "README.md: keep it a product page; history goes to docs/models.md"
    tables = [line for line in readme.splitlines() if line.startswith("| model |")]
    assert len(tables) == 1, "README.md: one quality table"
    for section in ["## Install", "## The two commands", "## The Python API", "## How good it is", "## How fast it is"]:
        assert section in readme, section
    speed = readme.split("## How fast it is", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    assert len(speed) == 3, speed


def test_readme_quality_table_is_the_committed_results():
    """Every number of the table comes from docs/results/v0.4.0_evaluation.json (the shipped run: the seed and arm
    its training.json names), the peers' from evaluate.md's run."""
    import json

    readme = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:6]]
            for line in readme.split("## How good it is", 1)[1].splitlines() if line.startswith("| ") and "---" not in line}
    result = json.loads((DOCS / "results" / "v0.4.0_evaluation.json").read_text())
    sets = ["gm_family", "gm_pitch", "ktuberling_lang", "zeroad_sfx"]
    cells: dict[str, dict[str, str]] = {}
    for r in result["results"]:
        cells.setdefault(Path(r["row"]).name, {})[r["dataset"]] = f"{100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f}"
    settings = json.loads((ROOT / "models" / "audioembed-base" / "training.json").read_text())["training"]["settings"]
    arm, twin = ("none", "neg") if settings["negatives"] == "none" else ("neg", "none")
    readme_row = {f"audiontt2020-stacked-s{settings['seed']}-{arm}": "**audioembed-base** v0.4.0",
                  f"audiontt2020-stacked-s{settings['seed']}-{twin}": "its twin",
                  "audioembed-base-v0.3.0": "audioembed-base v0.3.0",
                  "random-init (3 blocks, stacked 1024-d)": "random-init", "logmel-stats": "logmel-stats"}
    for row, label in readme_row.items():
        (line,) = [k for k in rows if k.startswith(label)]
        assert rows[line] == [cells[row][s] for s in sets], (line, row)
    evaluate = (DOCS / "evaluate.md").read_text().split("## Baselines on the dev sets", 1)[1]
    for peer in ["resemblyzer", "crepe-tiny"]:
        run = [c.strip() for c in re.search(rf"^\| {peer} \|(.*)\|$", evaluate, flags=re.M).group(1).split("|")]
        (line,) = [k for k in rows if k.startswith(peer)]
        assert rows[line] == [run[1], run[3], run[4], run[5]], peer  # the instrument-disjoint columns


def test_training_page_explains_training_and_each_study_has_a_page():
    training = (DOCS / "training.md").read_text()
    assert len(training.splitlines()) <= 450
    assert "## The release recipe (v0.3.0) and why" in training
    nav = (ROOT / "mkdocs.yml").read_text().split("  - Experiments:", 1)[1]
    index = (DOCS / "experiments" / "index.md").read_text()
    pages = sorted((DOCS / "experiments").glob("*.md"))
    assert len(pages) >= 20
    for page in pages:
        assert f"experiments/{page.name}" in nav, f"{page.name}: list it under Experiments in mkdocs.yml"
        if page.name == "index.md":
            continue
        text = page.read_text()
        assert f"]({page.name})" in index, f"{page.name}: list it in docs/experiments/index.md"
        assert f"](experiments/{page.name})" in training, f"{page.name}: list it in docs/training.md"
        assert text.startswith("# ") and "**Question.**" in text, page.name
        results = re.findall(r"\]\(\.\./results/([^)#]+)\)", text)
        assert results and all((DOCS / "results" / r).is_file() for r in results), (page.name, results)


def test_links_in_readme_and_docs_resolve():
    broken = []
    for page in MD_PAGES:
        for link in LINK.findall(re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)):
            if re.match(r"[a-z]+:", link):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link}")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert not broken, broken


def test_manual_names_no_machine_paths():
    found = [f"{p.relative_to(ROOT)}:{n}" for p in MD_PAGES for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"(?<![\w.])/(work|home|Users|root)/", line)]
    assert not found, found
