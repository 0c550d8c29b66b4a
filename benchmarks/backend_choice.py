"""Which backend `--backend auto` should pick on a CPU: the CLI end to end on one folder, per backend.

python benchmarks/backend_choice.py FOLDER [--python PY] [--backends auto,onnx,torch] [--rounds 1]

Each run is a fresh `audioembed embed FOLDER -o TMP -q` process (the same files, every output recomputed);
wall time and the process's peak RSS (from wait4) are reported. --python picks the environment, e.g. one
without torch. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run_once(python: str, folder: str, backend: str, out: str) -> dict:
    args = [python, "-m", "audioembed.cli", "embed", folder, "-o", out, "-q", "--overwrite", "--backend", backend]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    summary = proc.stderr.read().strip().splitlines()
    return {"backend": backend, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "exit": os.waitstatus_to_exitcode(status),
            "summary": summary[0] if summary else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--backends", default="auto,onnx,torch")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    chosen = subprocess.run([args.python, "-c", "from audioembed import backends; print(backends.choose('auto'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for backend in args.backends.split(","):
                results.append(run_once(args.python, args.folder, backend, os.path.join(tmp, backend)))
    print(f"{args.folder} with {args.python}: auto picks {chosen} here; {os.cpu_count()} cores")
    print("| backend | wall (s) | peak RSS (MB) | summary |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['summary']} |")
    print(json.dumps({"folder": args.folder, "python": args.python, "auto": chosen, "cores": os.cpu_count(), "runs": results}))


if __name__ == "__main__":
    main()
