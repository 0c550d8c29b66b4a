"""Install instructions a new user can follow from a clone: every hint names an extra that exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEXT_FILES = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "audioembed").rglob("*.py"), *(REPO / "scripts").rglob("*.sh")]
)


def extras() -> dict[str, list[str]]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_no_instruction_installs_the_unpublished_package_by_name():
    """`pip install audioembed` and `"audioembed[x]"` fail: the package is not on PyPI."""
    bad = re.compile(r"""pip install\s+(--\S+\s+)*['"]?audioembed\b""")
    found = [f"{p.relative_to(REPO)}:{n}" for p in TEXT_FILES for n, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert found == []


def test_every_extra_named_in_docs_and_hints_exists():
    named = {m for p in TEXT_FILES for m in re.findall(r"""\.\[([a-z,]+)\]""", p.read_text())}
    assert named and {e for n in named for e in n.split(",")} <= set(extras())


def test_install_hints_name_the_packages_of_their_extra():
    from audioembed.errors import EXTRA_PACKAGES, install_hint

    for extra, requirements in extras().items():
        if extra == "test":
            continue
        names = [re.split(r"[<>=!~\[ ]", r)[0] for r in requirements]
        assert EXTRA_PACKAGES[extra] == names, extra
        hint = install_hint(extra)
        assert f'pip install ".[{extra}]"' in hint and all(n in hint for n in names)
    assert "https://download.pytorch.org/whl/cpu" in install_hint("torch")


def test_readme_installs_a_cpu_only_torch_the_way_pytorch_documents_it():
    readme = (REPO / "README.md").read_text()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme
    assert "pip install ." in readme and 'pip install ".[av,eval]"' in readme  # the extras in one line, one wheel build


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_quick_start_output_is_ignored_by_git():
    out = re.search(r"audioembed embed examples/ -o (\S+)", (REPO / "README.md").read_text()).group(1)
    probe = f"{out.rstrip('/')}/ambi_choir.npy"
    assert subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO).returncode == 0, probe


def imported_distributions() -> dict[str, set[str]]:
    """Every third-party distribution audioembed/ imports (lazily or not), with the files that import it."""
    import ast
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in (REPO / "audioembed").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {"audioembed"}:
                for dist in dists.get(top, [top]):
                    found.setdefault(re.sub(r"[-_.]+", "-", dist).lower(), set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_package_is_declared():
    """A package imported but undeclared arrives only through another's dependencies (rich came with typer)."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]
    declared = {re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ;]", r)[0]).lower() for r in requirements}
    peers = {"resemblyzer", "torchcrepe"}  # the evaluation's peers: scripts/check_peers.sh installs them (docs/evaluate.md)
    undeclared = {d: sorted(f) for d, f in imported_distributions().items() if d not in declared | peers}
    assert undeclared == {}, f"declare these in pyproject.toml: {undeclared}"
    core = [re.split(r"[<>=!~\[ ;]", r)[0] for r in project["dependencies"]]
    assert "rich" in core  # the embed command's progress bar (console.py): a plain install needs it
