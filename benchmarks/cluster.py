"""files/s of `audioembed embed` against `embed-cluster` on Ray with 1 and 2 actors, on one folder.

python benchmarks/cluster.py [--files 1000] [--rounds 3] [--model FOLDER] [--workdir DIR]

All three run in fresh processes, interleaved in rounds (CLI, Ray 1 actor, Ray 2 actors, repeat), so
their ratios hold on a shared machine; medians over rounds are reported. Every contender gets all
cores: the CLI (ONNX threads = cores, decode threads = its default), one actor with --threads = cores,
two actors with --threads = cores / 2. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402

SMALL = 8  # files in the small job that measures each engine's fixed cost (start, model load)

# A driver that does what `audioembed embed-cluster` does (list, Ray, write Parquet), timing Ray's start
# apart from the jobs (on a cluster it is paid once): a first small job (one-time warm-up of Ray Data and
# the worker processes), the full job, then a small job again: full minus small is the per-file cost
# without the fixed cost of each job (starting its actors, loading the model in each).
RAY_DRIVER = """
import json, sys, time
t0 = time.perf_counter()
import ray
folder, out, model, workers, threads, small = sys.argv[1:7]
workers, threads, small = int(workers), int(threads), int(small)
ray.init(num_cpus=workers * threads + 1, include_dashboard=False, log_to_driver=False)
t1 = time.perf_counter()
from audioembed.outputs import parquet
from audioembed.integrations import ray as distributed
paths = distributed.list_inputs([folder], [])
def job(files, to):
    t = time.perf_counter()
    distributed.run(files, to, workers=workers, threads=threads, model=model, backend="onnx", progress=False)
    return time.perf_counter() - t
first_job_s = job(paths[:small], out + "-first")  # Ray Data's and the workers' one-time warm-up
job_s = job(paths, out)
small_job_s = job(paths[:small], out + "-small")
table = parquet.read_table(out, ["path", "error"])
print(json.dumps({"start_s": t1 - t0, "first_job_s": first_job_s, "job_s": job_s, "small_job_s": small_job_s, "rows": table.num_rows,
                  "errors": table.num_rows - table.column("error").null_count, "shards": len(parquet.shards(out))}))
"""


# The same actor class and blocks as a 1-actor job, called in one plain process that writes the shards
# itself: the work of `ray_1_actor` without Ray, so that their difference is what Ray costs.
PLAIN_DRIVER = """
import json, math, sys, time
t0 = time.perf_counter()
import numpy as np, pyarrow.parquet as pq
from audioembed.integrations import ray as distributed
folder, out, model, threads = sys.argv[1:5]
paths = distributed.list_inputs([folder], [])
actor = distributed.EmbedBatch(model, backend="onnx", num_threads=int(threads), num_workers=int(threads))
rows = max(1, min(distributed.MAX_ROWS_PER_SHARD, math.ceil(len(paths) / distributed.BLOCKS_PER_WORKER)))
for i in range(0, len(paths), rows):
    pq.write_table(actor({"path": np.array(paths[i : i + rows], dtype=object)}), f"{out}/{i}.parquet")
print(json.dumps({"job_s": time.perf_counter() - t0}))
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=1000, help="folder size (generated once into --workdir)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model", type=Path, default=ROOT / "models" / "audioembed-base")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "audioembed-bench")
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON result")
    return p.parse_args()


def env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def run_cli(folder: Path, model: Path, files: list[Path]) -> dict:
    """The full folder, then its first SMALL files, each in a fresh process."""
    times = {}
    for key, inputs in (("wall_s", [folder]), ("small_wall_s", files[:SMALL])):
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "audioembed.cli", "embed", *map(str, inputs), "-o", out, "-m", str(model),
                   "--backend", "onnx", "-q"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
            times[key] = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"embed failed: {proc.stderr[-2000:]}")
    return times


def run_ray(folder: Path, model: Path, workers: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.parquet"
        cmd = [sys.executable, "-c", RAY_DRIVER, str(folder), str(out), str(model), str(workers), str(threads), str(SMALL)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"Ray driver failed: {proc.stderr[-3000:]}")
        return {"wall_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def run_plain(folder: Path, model: Path, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", PLAIN_DRIVER, str(folder), out, str(model), str(threads)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"plain driver failed: {proc.stderr[-3000:]}")
        return {"wall_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    a = parse_args()
    cores = os.cpu_count() or 1
    folder, summary = corpus.folder(a.workdir, a.files)
    from audioembed.integrations import ray as distributed

    files = [Path(p) for p in distributed.list_inputs([folder], [])]  # the order the Ray driver uses
    contenders = {
        "cli": lambda: run_cli(folder, a.model, files),
        "actor_without_ray": lambda: run_plain(folder, a.model, cores),
        "ray_1_actor": lambda: run_ray(folder, a.model, 1, cores),
        "ray_2_actors": lambda: run_ray(folder, a.model, 2, max(1, cores // 2)),
    }
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    loads = [os.getloadavg()[0]]
    for r in range(a.rounds):
        for name, call in contenders.items():
            runs[name].append(call())
            print(f"round {r + 1} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
        loads.append(os.getloadavg()[0])
    n = a.files
    med = {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in runs.items()}
    cli, ray1, ray2 = med["cli"], med["ray_1_actor"], med["ray_2_actors"]

    def per_file_ms(full_s: float, small_s: float) -> float:
        return 1000 * (full_s - small_s) / (n - SMALL)

    figures = {
        "cli_files_per_s": n / cli["wall_s"],
        "ray_1_actor_files_per_s": n / ray1["job_s"],
        "ray_2_actors_files_per_s": n / ray2["job_s"],
        "ray_1_actor_files_per_s_cold": n / (ray1["start_s"] + ray1["first_job_s"] + ray1["job_s"]),
        "ray_2_actors_files_per_s_cold": n / (ray2["start_s"] + ray2["first_job_s"] + ray2["job_s"]),
        "ray_1_actor_over_cli": cli["wall_s"] / ray1["job_s"],
        "ray_2_actors_over_cli": cli["wall_s"] / ray2["job_s"],
        "ray_start_s": statistics.median(x["start_s"] for name in ("ray_1_actor", "ray_2_actors") for x in runs[name]),
        "ray_first_job_s": statistics.median(x["first_job_s"] for name in ("ray_1_actor", "ray_2_actors") for x in runs[name]),
        "cli_fixed_s": cli["small_wall_s"],
        "ray_1_actor_fixed_s": ray1["small_job_s"],
        "ray_2_actors_fixed_s": ray2["small_job_s"],
        "cli_ms_per_file": per_file_ms(cli["wall_s"], cli["small_wall_s"]),
        "ray_1_actor_ms_per_file": per_file_ms(ray1["job_s"], ray1["small_job_s"]),
        "ray_2_actors_ms_per_file": per_file_ms(ray2["job_s"], ray2["small_job_s"]),
    }
    figures["actor_without_ray_files_per_s"] = n / med["actor_without_ray"]["job_s"]
    figures["ray_overhead_ms_per_file"] = 1000 * (ray1["job_s"] - med["actor_without_ray"]["job_s"]) / n
    result = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": cores, "load_average": loads},
        "versions": _versions(),
        "corpus": summary,
        "rounds": a.rounds,
        "small_job_files": SMALL,
        "runs": runs,
        "median": med,
        "figures": figures,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"cluster-{result['when'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2))
    for key, value in figures.items():
        print(f"{key:38s} {value:10.3f}")
    print(f"load average {loads[0]:.1f} -> {loads[-1]:.1f}; written {path}")


def _versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("ray", "pyarrow", "onnxruntime", "numpy")} | {"python": platform.python_version()}


if __name__ == "__main__":
    main()
