"""audioembed speed and memory benchmark: prints a table of figures against targets, writes JSON.

python benchmarks/run.py [--quick] [--model FOLDER] [--threads N] [--runs N] [--workdir DIR]

Every figure comes from the same run. The throughput contenders run interleaved in rounds (each
gets a time slot per round, in a shuffled order), and each figure is a contender's fastest round:
noise on a shared machine only slows a contender down, so its best round is the figure that repeats.
`--runs 3` repeats the measured sections and says, for every target, whether the spread of the runs
is smaller than the distance to the target. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
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


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short run: 2 rounds, batch 1 and 8, one end-to-end round, a 10-minute long file")
    p.add_argument("--model", help="model folder to benchmark (default: the default architecture with random weights)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every backend, numpy and torch")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "audioembed-bench", help="cache for generated audio")
    p.add_argument("--batch-sizes", type=int, nargs="+", help="default 1 32 (quick: 1 8)")
    p.add_argument("--rounds", type=int, help="throughput rounds (default 5, quick 2); end-to-end rounds: the same, at most 3 (quick 1)")
    p.add_argument("--files", type=int, default=1000, help="end-to-end folder size (default 1000, also in --quick: see docs)")
    p.add_argument("--long-seconds", type=int, help="long file length (default 3600, quick 600)")
    p.add_argument("--runs", type=int, default=1, help="repeat the measured sections N times and report each target's spread")
    p.add_argument("--skip", nargs="*", default=[], choices=["throughput", "e2e", "memory", "startup"])
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    a = p.parse_args()
    a.batch_sizes = a.batch_sizes or ([1, 8] if a.quick else [1, 32])
    a.rounds = a.rounds or (2 if a.quick else 5)
    a.e2e_rounds = min(a.rounds, 1 if a.quick else 3)
    a.long_seconds = a.long_seconds or (600 if a.quick else 3600)
    a.slot_s = 1.0
    return a


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy loads its BLAS: every GEMM gets the same threads
# OpenBLAS reads these when it loads: OPENBLAS_CORETYPE forces a kernel (set on some machines for old
# OpenBLAS builds) that can be slower than the CPU's own. The limit is the best GEMM this machine can
# run, so they are unset here, before numpy loads, and for the processes this one starts.
BLAS_ENV_UNSET = {v: os.environ.pop(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}

import numpy as np  # noqa: E402

sys.path.insert(0, str(HERE))
import corpus  # noqa: E402
import flops  # noqa: E402
from report import Row, format_table, rows, stability, stability_table  # noqa: E402


def env_with_package() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# The limit ---------------------------------------------------------------------------------------

AVX512_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")


def blas_info() -> dict:
    """The BLAS libraries loaded in this process (threadpoolctl) and numpy's OpenBLAS kernel."""
    from threadpoolctl import threadpool_info

    libs = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
    numpy_blas = next((i for i in libs if "numpy" in (i["filepath"] or "")), libs[0] if libs else {})
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    arch = (numpy_blas.get("architecture") or "").lower()
    below = "avx512f" in flags and arch not in AVX512_KERNELS
    return {"unset": BLAS_ENV_UNSET, "libraries": libs, "numpy": numpy_blas, "cpu_avx512": "avx512f" in flags,
            "numpy_kernel_below_cpu": below}


def gemm_as_set() -> dict | None:
    """numpy's GEMM with the OpenBLAS variables this process unset (a fresh process; outside the rounds):
    what a "limit" measured under them would have been."""
    return probe("gemm", env=BLAS_ENV_UNSET) if BLAS_ENV_UNSET else None


def gemm_contenders(n: int = 2048) -> dict:
    """n x n matrix products, work unit FLOPs: numpy float32, torch float32 and, where the CPU has it in
    hardware, bfloat16 (emulated, one 2048² product takes a minute: it would stretch every round's slot)."""
    import torch

    from audioembed.train.precision import native_bfloat16

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)

    def gemm(x, y):
        def call(_batch) -> float:
            x @ y
            return 2.0 * n**3

        return call

    out = {"gemm_numpy_f32": gemm(a, b), "gemm_torch_f32": gemm(ta, tb)}
    if native_bfloat16("cpu"):
        out["gemm_torch_bf16"] = gemm(ta.bfloat16(), tb.bfloat16())
    return out


# Throughput -------------------------------------------------------------------------------------


def model_contenders(model: Path, cfg, threads: int, batch_sizes: list[int]) -> dict:
    """Calls that embed a batch of 10 s clips, work unit seconds of audio."""
    import torch

    import peer_models as peers
    from audioembed import Embedder, mel

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    sr, seconds = cfg.sample_rate, 10.0
    clips = {b: [0.1 * rng.standard_normal(int(seconds * sr), dtype=np.float32) for _ in range(b)] for b in batch_sizes}
    pad = cfg.n_fft // 2
    padded = {b: np.pad(np.stack(c), ((0, 0), (pad, pad)), mode="reflect") for b, c in clips.items()}
    n_mel = int(seconds * sr) // cfg.hop_length + 1
    ntt = peers.AudioNTT2020(cfg).eval()
    cnn14 = peers.Cnn14().eval()
    n32 = int(seconds * peers.Cnn14.sample_rate)  # CNN14 takes 32 kHz: the same 10 s at its own rate
    cnn14_in = {b: torch.from_numpy(0.1 * rng.standard_normal((b, n32), dtype=np.float32)) for b in batch_sizes}
    from audioembed import backends
    from audioembed.backends import openvino

    kinds = {"onnx": ("onnx", "f32"), "torch": ("torch", "f32")}
    if backends.openvino_available() and openvino.bf16_native():  # what auto picks there (issue 39's bars)
        kinds["openvino_bf16"] = ("openvino", "bf16")
    embedders = {
        name: {b: Embedder(model, backend=backend, precision=precision, device="cpu", batch_size=b, num_threads=threads)
               for b in batch_sizes}
        for name, (backend, precision) in kinds.items()
    }

    def backend_call(name):
        backend = embedders[name][batch_sizes[0]].backend

        def call(b):
            backend.run(padded[b], np.full(b, n_mel, np.int64))
            return b * seconds

        return call

    def embed_call(name):
        return lambda b: (embedders[name][b].embed(clips[b], sr=sr), b * seconds)[1]

    def torch_call(module, inputs):
        def call(b):
            with torch.inference_mode():
                module(inputs[b])
            return b * seconds

        return call

    def logmel_call():
        logmel = mel.LogMel(cfg)

        def call(b):
            logmel.normalised(padded[b])
            return b * seconds

        return call

    # The numpy log-mel before the graph, where the graph takes the log-mel (an audioembed 0.1 graph computes it inside).
    before_graph = {} if flops.graph_takes_wave(model / "model.onnx") else {"logmel_numpy": logmel_call()}
    return {
        "onnx_embed": embed_call("onnx"),
        "onnx_backend": backend_call("onnx"),
        **before_graph,
        "torch_embed": embed_call("torch"),
        "torch_backend": backend_call("torch"),
        **({"openvino_bf16_embed": embed_call("openvino_bf16"), "openvino_bf16_backend": backend_call("openvino_bf16")}
           if "openvino_bf16" in embedders else {}),
        "audiontt2020_eager": torch_call(ntt, {b: torch.from_numpy(np.stack(c)) for b, c in clips.items()}),
        "cnn14": torch_call(cnn14, cnn14_in),
    }


def warm_up(gemms: dict, models: dict, batch_sizes: list[int]) -> None:
    """One call of each contender at each batch size: first-call allocations, kernel choices, graph caches."""
    for call in gemms.values():
        call(None)
    for b in batch_sizes:
        for call in models.values():
            call(b)


def throughput(gemms: dict, models: dict, batch_sizes: list[int], rounds: int, slot_s: float, seed: int = 0) -> dict:
    """Every (contender, batch) gets one slot per round, in a new shuffled order each round; rates are work per second."""
    slots = [(name, None) for name in gemms] + [(name, b) for b in batch_sizes for name in models]
    calls = {**gemms, **models}
    rates: dict[str, dict] = {name: {} for name in calls}
    for r in range(rounds):
        order = np.random.default_rng([seed, r]).permutation(len(slots))
        for name, b in (slots[i] for i in order):
            t0, work = time.perf_counter(), 0.0
            while True:
                work += calls[name](b)
                elapsed = time.perf_counter() - t0
                if elapsed >= slot_s:
                    break
            rates[name].setdefault(b or 0, []).append(work / elapsed)
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n}{'' if b is None else f'@{b}'} {rates[n][b or 0][-1]:.3g}" for n, b in slots),
              file=sys.stderr)
    best = {name: {b: max(v) for b, v in per.items()} for name, per in rates.items()}
    limit_name = max(gemms, key=lambda n: best[n][0])
    return {
        "gemm_gflops": {n: best[n][0] / 1e9 for n in gemms},
        "limit": limit_name,
        "limit_gflops": best[limit_name][0] / 1e9,
        "audio_seconds_per_second": {n: best[n] for n in models},
        "rounds": rates,
    }


# End to end -------------------------------------------------------------------------------------


def end_to_end(model: Path, folder: Path, one_file: Path, workers: int, rounds: int) -> dict:
    """Decode only, compute only and the CLI on the same folder, in rounds; each figure its fastest round.

    The CLI's time includes its fresh process's fixed cost (interpreter, imports, model load); it is
    measured on its own (the CLI on a one-file folder) because it is why fewer files give a lower ratio.
    """
    from concurrent.futures import ThreadPoolExecutor

    from audioembed import Embedder, audio
    from audioembed.audio import AUDIO_EXTENSIONS

    files = sorted(p for p in folder.rglob("*") if p.suffix in AUDIO_EXTENSIONS)
    embedder = Embedder(model, backend="onnx", batch_size=16)  # as the CLI makes it: its default batch and threads

    def cli(src: Path, n: int) -> float:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "audioembed.cli", "embed", str(src), "-o", out, "--model", str(model),
                   "--backend", "onnx", "--workers", str(workers), "--quiet"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=env_with_package(), capture_output=True, text=True)
            wall = time.perf_counter() - t0
            n_out = len(list(Path(out).rglob("*.npy")))
        if proc.returncode != 0 or n_out != n:
            raise RuntimeError(f"CLI run on {src} failed ({proc.returncode}, {n_out}/{n} outputs): {proc.stderr[-2000:]}")
        return wall

    for p in files:  # the page cache holds the folder before the first round, in every mode
        p.read_bytes()
    wall: dict[str, list[float]] = {"decode_only": [], "compute_only": [], "cli": [], "cli_one_file": []}
    for r in range(rounds):
        # Decode only: what the CLI's workers do before the model (decode, mono, resample), same worker count.
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            arrays = list(pool.map(lambda p: np.concatenate(list(audio.stream(p, target_sr=16000))), files))
        wall["decode_only"].append(time.perf_counter() - t0)
        audio_s = sum(len(a) for a in arrays) / 16000
        # Compute only: the same audio, already decoded, through the Embedder (warmed up once).
        if r == 0:
            embedder.embed(arrays[:4], sr=16000)
        t0 = time.perf_counter()
        embedder.embed(arrays, sr=16000)
        wall["compute_only"].append(time.perf_counter() - t0)
        del arrays
        # End to end: the CLI in a fresh process, ONNX backend, default batch, the same workers.
        wall["cli"].append(cli(folder, len(files)))
        wall["cli_one_file"].append(cli(one_file, 1))
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in wall.items()), file=sys.stderr)
    rates = {k: audio_s / min(wall[k]) for k in ("decode_only", "compute_only", "cli")}
    return {
        "files": len(files),
        "audio_seconds": audio_s,
        "workers": workers,
        "wall_s": wall,
        "cli_fixed_s": min(wall["cli_one_file"]),
        "audio_seconds_per_second": rates,
        "cli_over_bound": rates["cli"] / min(rates["decode_only"], rates["compute_only"]),
    }


# Fresh-process probes ----------------------------------------------------------------------------


def probe(*args: str, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "fresh_process.py"), *args], env={**env_with_package(), **(env or {})},
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"probe {args} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory(model: Path, short: Path, long: Path, long_seconds: int) -> dict:
    out = {"long_seconds": long_seconds}
    for mode in ("clip", "frames", "frames-in-memory"):
        s, l = probe("memory", str(model), str(short), mode), probe("memory", str(model), str(long), mode)
        out[mode] = {"short": s, "long": l, "limit_mb": 1.3 * s["peak_rss_mb"] + 100}
    return out


def startup(model: Path, short: Path, repeats: int = 3) -> dict:
    runs = [probe("startup", str(model), str(short)) for _ in range(repeats)]
    return {
        "runs": runs,
        "import_s": statistics.median(r["import_s"] for r in runs),
        "first_embedding_s": statistics.median(r["first_embedding_s"] for r in runs),
        "heavy_modules_after_import": sorted({m for r in runs for m in r["heavy_modules_after_import"]}),
        "torch_imported": any(r["torch_imported_at_end"] for r in runs),
    }


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import onnxruntime
    import torch

    from audioembed import backends

    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
        "openvino": __import__("openvino").__version__ if backends.openvino_available() else None,
    }


def main() -> None:
    a = ARGS
    a.workdir.mkdir(parents=True, exist_ok=True)
    from audioembed.config import ModelConfig

    model = Path(a.model) if a.model else corpus.random_model(a.workdir)
    cfg = ModelConfig.load(model / "config.json")
    res: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": a.quick, "model": str(model),
                 "args": {k: str(v) for k, v in vars(a).items()}, "machine": machine(), "blas": blas_info()}
    check = flops.check(model / "model.onnx", cfg, threads=a.threads)
    res["flop_check"] = check
    # Useful work per audio second as the ONNX backend computes it: where it cuts the graph after its STFT
    # (backends/graph_cut.py), the STFT is scipy's FFT, not the graph's DFT convolution.
    from audioembed.backends.onnx import OnnxBackend

    res["onnx_stft"] = OnnxBackend(model / "model.onnx", cfg, num_threads=1).stft
    form = "fft" if res["onnx_stft"] == "fft" else check["frontend_form"]
    res["model_flops_per_audio_second"] = flops.audioembed_flops_per_second(cfg, form)
    short = corpus.long_file(a.workdir, 10)
    long = corpus.long_file(a.workdir, a.long_seconds) if "memory" not in a.skip else None
    if "throughput" not in a.skip:
        gemms, models = gemm_contenders(), model_contenders(model, cfg, a.threads, a.batch_sizes)
        res["blas"] = blas_info()  # again: torch loads its own BLAS
        res["blas"]["numpy_gemm_as_set"] = gemm_as_set()
        warm_up(gemms, models, a.batch_sizes)
    if "e2e" not in a.skip:
        folder, summary = corpus.folder(a.workdir, a.files)
        one_file, _ = corpus.folder(a.workdir, 1)
        res["corpus"] = summary
    res["runs"] = []
    for run in range(a.runs):
        r: dict = {"load_average": os.getloadavg()}
        tag = f"run {run + 1}/{a.runs}: " if a.runs > 1 else ""
        if "throughput" not in a.skip:
            print(f"{tag}throughput ...", file=sys.stderr)
            r["throughput"] = throughput(gemms, models, a.batch_sizes, a.rounds, a.slot_s, seed=run)
        if "e2e" not in a.skip:
            print(f"{tag}end to end ({a.files} files) ...", file=sys.stderr)
            r["e2e"] = end_to_end(model, folder, one_file, min(4, os.cpu_count() or 1), a.e2e_rounds)
        if "memory" not in a.skip:
            print(f"{tag}memory ({a.long_seconds} s file) ...", file=sys.stderr)
            r["memory"] = memory(model, short, long, a.long_seconds)
        if "startup" not in a.skip:
            print(f"{tag}start-up ...", file=sys.stderr)
            r["startup"] = startup(model, short)
        r["load_average_end"] = os.getloadavg()
        res["runs"].append(r)
    tables = [rows(r, res) for r in res["runs"]]
    for r, table in zip(res["runs"], tables):
        r["table"] = [dict(zip(Row._fields, row)) for row in table]
    if a.runs > 1:
        res["stability"] = stability(tables)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"bench-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}{'-quick' if a.quick else ''}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    m = res["machine"]
    for i, (r, table) in enumerate(zip(res["runs"], tables)):
        print(f"\n{'run %d/%d, ' % (i + 1, a.runs) if a.runs > 1 else ''}{m['cpu']}, {m['cores']} cores, {a.threads} threads, "
              f"load {r['load_average'][0]:.2f} -> {r['load_average_end'][0]:.2f}")
        print(format_table(table))
    if a.runs > 1:
        print(f"\nStability over {a.runs} runs (each TARGET's spread against its distance to the target):")
        print(stability_table(res["stability"]))
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
