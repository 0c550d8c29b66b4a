"""The package's shape: imports point one way (no cycle, even through an import inside a function), modules
stay small, and the import paths users hold keep working after a move."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "audioembed"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """dotted name -> file, for every module of the package (a package is its __init__.py)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (module level or inside a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from X import y`: y is a module when X.y is one, else a name defined in X
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import pkg.mod.name`: the deepest module named
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["audioembed.cli"] and graph["audioembed.embedder"]  # the parser sees imports at all
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_one_through_a_function_level_import(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from . import b\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from .a import x\n")
    modules = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.a": tmp_path / "pkg" / "a.py", "pkg.b": tmp_path / "pkg" / "b.py"}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (one concern each, at most {MAX_LINES} lines): {long}"


def test_moved_modules_keep_their_old_import_paths():
    from audioembed import distributed, hf
    from audioembed.integrations import datasets, ray

    assert distributed.EmbedBatch is ray.EmbedBatch and distributed.run is ray.run
    assert hf.EmbedColumn is datasets.EmbedColumn


def test_python_m_audioembed_hear_still_runs_the_hear_tools_entry():
    """`python -m audioembed.hear MODULE ARGS` (docs/evaluate.md): with no module it prints its usage."""
    done = subprocess.run([sys.executable, "-m", "audioembed.hear"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "usage: python -m audioembed.hear MODULE" in done.stderr


def test_no_code_script_or_manual_page_names_a_machines_path():
    """Scripts take their data folder as an argument or an environment variable (docs/results/ keeps what runs printed)."""
    root = PACKAGE.parent
    roots = ("/work/", "/home/", "/root/", "/Users/")
    files = [p for folder in ("audioembed", "scripts", "benchmarks", "docs") for p in (root / folder).rglob("*")
             if p.is_file() and p.suffix in (".py", ".sh", ".md", ".json", ".yaml", ".yml", ".toml")
             and "results" not in p.relative_to(root).parts]
    files += [root / "README.md", root / "pyproject.toml", root / "mkdocs.yml"]
    assert len(files) > 50
    named = {str(p.relative_to(root)): r for p in files for r in roots if r in p.read_text(encoding="utf-8", errors="replace")}
    assert named == {}
