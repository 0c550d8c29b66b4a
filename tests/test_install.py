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
    assert "pip install ." in readme and 'pip install ".[eval]"' in readme


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_quick_start_output_is_ignored_by_git():
    out = re.search(r"audioembed embed examples/ -o (\S+)", (REPO / "README.md").read_text()).group(1)
    probe = f"{out.rstrip('/')}/ambi_choir.npy"
    assert subprocess.run(["git", "check-ignore", "-q", probe], cwd=REPO).returncode == 0, probe
