"""Plant known bugs one at a time and check that the test suite catches each, every run.

Each mutant edits one line of a temp copy of the repository (never this checkout) and runs the test
files that guard it there; "caught" means at least one test failed. A test earns its place by failing
(docs/STYLE principle 9): a mutant that survives means a test asserts less than it claims.

    python scripts/mutants.py                 # every mutant, 3 runs each, plus the unmutated baseline
    python scripts/mutants.py --runs 1 -k pool
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, file, original text, planted text, test files that must catch it)
MUTANTS = [
    ("norm_mean sign flipped", "audioembed/nn/encoder.py",
     "(x - self.cfg.norm_mean)", "(x + self.cfg.norm_mean)", ["tests/test_embedder.py"]),
    ("inference pooling mean-only", "audioembed/embedder.py",
     "(a.max + a.sum / a.count)", "(a.sum / a.count)", ["tests/test_embedder.py"]),
    ("training pooling mean-only (AudioEncoder.pool)", "audioembed/nn/encoder.py",
     "return frames.max(dim=1).values + frames.mean(dim=1)", "return frames.mean(dim=1)", ["tests/test_train.py"]),
    ("writes go straight to the final path (not atomic)", "audioembed/files.py",
     "    tmp = temp_path(path)\n", "    tmp = path\n", ["tests/test_reliability_interrupted.py"]),
    ("sha256 mismatch ignored", "audioembed/folder.py",
     "if actual != expected:", "if False:", ["tests/test_reliability_hub.py"]),
    ("resampler returns its input", "audioembed/audio.py",
     "        if self.stream is None:\n            return block\n", "        return block\n", ["tests/test_audio.py"]),
    ("negatives return the identity", "audioembed/train/negatives.py",
     "    return perturb_with(x, [strategies[int(k)] for k in pick], segments, gen, shift)",
     "    return x.clone()", ["tests/test_train.py"]),
    ("torch weights from pytorch_model.bin via pickle", "audioembed/backends/torch.py",  # past the static check too
     "state = load_file(str(path))", 'state = torch.load(str(path.with_name("pytorch_model.bin")), **{"weights_only": False})',
     ["tests/test_security_weights.py"]),
]


def copy_tree(dest: Path) -> None:
    """Tracked and untracked (not ignored) files: what CI would see, without .venv or caches."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(tree: Path, tests: list[str], show_failures: bool = False) -> tuple[int, list[str], float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", *tests],
                          cwd=tree, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^FAILED (\S+)", proc.stdout, re.M)))
    if show_failures and proc.returncode:
        print(proc.stdout[-6000:])
    return proc.returncode, failed, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mutant (a flaky catch is no catch)")
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    args = parser.parse_args()
    # A shell's background job starts with SIGINT ignored, and children inherit that, which would break the
    # Ctrl-C tests; a Python handler here is reset to the default in every child the tests start.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mutants = [m for m in MUTANTS if args.k in m[0]]
    rows, survived = [], 0
    with tempfile.TemporaryDirectory(prefix="audioembed-mutants-") as tmp:
        tree = Path(tmp) / "repo"
        copy_tree(tree)
        files = sorted({t for m in mutants for t in m[4]})
        code, failed, seconds = run_tests(tree, files, show_failures=True)
        print(f"baseline ({', '.join(files)}): exit {code}, {len(failed)} failed, {seconds:.0f} s", flush=True)
        if code != 0:
            print("the unmutated tests fail; fix them first:", *failed, sep="\n  ")
            return 2
        for name, rel, old, new, tests in mutants:
            path = tree / rel
            original = path.read_text()
            if original.count(old) != 1:
                print(f"{name}: the text to mutate occurs {original.count(old)} times in {rel}; update MUTANTS")
                return 2
            path.write_text(original.replace(old, new))
            try:
                runs = [run_tests(tree, tests) for _ in range(args.runs)]
            finally:
                path.write_text(original)
            caught = sum(code == 1 and bool(f) for code, f, _ in runs)
            survived += caught < args.runs
            catchers = sorted({t.split("::", 1)[1] for _, f, _ in runs for t in f})
            rows.append((name, f"{caught}/{args.runs}", len(catchers), ", ".join(catchers[:3]) + (" ..." if len(catchers) > 3 else "")))
            print(f"{name}: caught {caught}/{args.runs} ({len(catchers)} tests)", flush=True)
    print("\n| planted bug | caught (runs) | failing tests | e.g. |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
