"""audioembed speed and memory benchmark: prints a table of figures against targets, writes JSON.

python benchmarks/run.py [--quick] [--model FOLDER] [--threads N] [--workdir DIR]

Every figure comes from the same run, and the throughput contenders run interleaved in rounds
(each contender gets a time slot per round; the median over rounds is reported), so ratios hold
on a noisy shared machine even when absolute numbers do not. See docs/benchmarks.md.
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
    p.add_argument("--quick", action="store_true", help="short run: 1 round, 200 files, a 10-minute long file, batch 1 and 8")
    p.add_argument("--model", help="model folder to benchmark (default: the default architecture with random weights)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for every backend and numpy")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "audioembed-bench", help="cache for generated audio")
    p.add_argument("--batch-sizes", type=int, nargs="+", help="default 1 32 (quick: 1 8)")
    p.add_argument("--rounds", type=int, help="throughput rounds (default 3, quick 1)")
    p.add_argument("--files", type=int, help="end-to-end folder size (default 1000, quick 200)")
    p.add_argument("--long-seconds", type=int, help="long file length (default 3600, quick 600)")
    p.add_argument("--skip", nargs="*", default=[], choices=["throughput", "e2e", "memory", "startup"])
    p.add_argument("--out", type=Path, default=HERE / "results", help="folder for the JSON results")
    a = p.parse_args()
    a.batch_sizes = a.batch_sizes or ([1, 8] if a.quick else [1, 32])
    a.rounds = a.rounds or (1 if a.quick else 3)
    a.files = a.files or (200 if a.quick else 1000)
    a.long_seconds = a.long_seconds or (600 if a.quick else 3600)
    a.slot_s = 0.5 if a.quick else 1.5
    return a


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy loads its BLAS: sgemm gets the same threads

import numpy as np  # noqa: E402

sys.path.insert(0, str(HERE))
import corpus  # noqa: E402
import flops  # noqa: E402


def env_with_package() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


# Throughput -------------------------------------------------------------------------------------


def sgemm_contender(n: int = 2048):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()

    def call(_batch: int) -> float:
        a @ b
        return 2.0 * n**3  # work unit: FLOPs

    return call


def throughput(model: Path, cfg, threads: int, batch_sizes: list[int], rounds: int, slot_s: float) -> dict:
    import torch

    import peer_models as peers
    from audioembed import Embedder

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
    embedders = {
        name: {b: Embedder(model, backend=name, device="cpu", batch_size=b, num_threads=threads) for b in batch_sizes}
        for name in ("onnx", "torch")
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

    contenders = {
        "sgemm": sgemm_contender(),
        "onnx_embed": embed_call("onnx"),
        "onnx_backend": backend_call("onnx"),
        "torch_embed": embed_call("torch"),
        "torch_backend": backend_call("torch"),
        "audiontt2020_eager": torch_call(ntt, {b: torch.from_numpy(np.stack(c)) for b, c in clips.items()}),
        "cnn14": torch_call(cnn14, cnn14_in),
    }
    for call in contenders.values():  # warm-up: first-call allocations, graph caches
        call(batch_sizes[0])
    rates: dict[str, dict[int, list[float]]] = {name: {b: [] for b in batch_sizes} for name in contenders}
    for r in range(rounds):
        for b in batch_sizes:
            for name, call in contenders.items():
                t0, work = time.perf_counter(), 0.0
                while True:
                    work += call(b)
                    elapsed = time.perf_counter() - t0
                    if elapsed >= slot_s:
                        break
                rates[name][b].append(work / elapsed)
            print(f"  round {r + 1}/{rounds}, batch {b}: " + ", ".join(f"{n} {v[b][-1]:.3g}" for n, v in rates.items()), file=sys.stderr)
    med = {name: {b: statistics.median(v) for b, v in per.items()} for name, per in rates.items()}
    sgemm = statistics.median([x for v in rates["sgemm"].values() for x in v])
    model_flops = flops.audioembed_flops_per_second(cfg)
    out = {
        "threads": threads,
        "clip_seconds": seconds,
        "sgemm_gflops": sgemm / 1e9,
        "model_mflops_per_audio_second": model_flops / 1e6,
        "model_flops_by_stage_per_10s": flops.audioembed_flops(cfg, seconds),
        "cnn14_mflops_per_audio_second": flops.cnn14_flops(seconds) / seconds / 1e6,
        "audio_seconds_per_second": {n: med[n] for n in contenders if n != "sgemm"},
        "rounds": {n: rates[n] for n in contenders},
    }
    out["fraction_of_sgemm"] = {
        n: {b: med[n][b] * model_flops / sgemm for b in batch_sizes}
        for n in ("onnx_embed", "onnx_backend", "torch_embed", "torch_backend", "audiontt2020_eager")
    }
    return out


# End to end -------------------------------------------------------------------------------------


def end_to_end(model: Path, folder: Path, threads: int, workers: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from audioembed import Embedder, audio
    from audioembed.audio import AUDIO_EXTENSIONS

    files = sorted(p for p in folder.rglob("*") if p.suffix in AUDIO_EXTENSIONS)
    # Decode-only: what the CLI's workers do before the model (decode, mono, resample), same worker count.
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(pool.map(lambda p: np.concatenate(list(audio.stream(p, target_sr=16000))), files))
    decode_s = time.perf_counter() - t0
    audio_s = sum(len(a) for a in arrays) / 16000
    # Compute-only: the same audio, already decoded, through the Embedder.
    embedder = Embedder(model, backend="onnx", batch_size=16, num_threads=threads)
    embedder.embed(arrays[:4], sr=16000)
    t0 = time.perf_counter()
    embedder.embed(arrays, sr=16000)
    compute_s = time.perf_counter() - t0
    del arrays
    # End to end: the CLI in a fresh process (start-up included), ONNX backend, default batch and workers.
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "audioembed.cli", "embed", str(folder), "-o", out, "--model", str(model),
               "--backend", "onnx", "--workers", str(workers), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env_with_package(), capture_output=True, text=True)
        cli_s = time.perf_counter() - t0
        n_out = len(list(Path(out).rglob("*.npy")))
    if proc.returncode != 0 or n_out != len(files):
        raise RuntimeError(f"CLI run failed ({proc.returncode}, {n_out}/{len(files)} outputs): {proc.stderr[-2000:]}")
    rates = {"decode_only": audio_s / decode_s, "compute_only": audio_s / compute_s, "cli": audio_s / cli_s}
    return {
        "files": len(files),
        "audio_seconds": audio_s,
        "workers": workers,
        "wall_s": {"decode_only": decode_s, "compute_only": compute_s, "cli": cli_s},
        "audio_seconds_per_second": rates,
        "cli_over_bound": rates["cli"] / min(rates["decode_only"], rates["compute_only"]),
    }


# Fresh-process probes ----------------------------------------------------------------------------


def probe(*args: str) -> dict:
    proc = subprocess.run([sys.executable, str(HERE / "fresh_process.py"), *args], env=env_with_package(), capture_output=True, text=True)
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


# Table ------------------------------------------------------------------------------------------


def rows(res: dict) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, met) rows of the summary table."""
    out: list[tuple[str, str, str, str]] = []
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    if "throughput" in res:
        t = res["throughput"]
        rate = t["audio_seconds_per_second"]
        bs = sorted(rate["onnx_embed"])
        out.append(("sgemm (numpy, float32)", f"{t['sgemm_gflops']:.1f} GFLOP/s", "", ""))
        out.append(("model FLOPs", f"{t['model_mflops_per_audio_second']:.0f} MFLOP per audio s", "", ""))
        names = {
            "onnx_embed": "ONNX, Embedder.embed", "onnx_backend": "ONNX, session.run only",
            "torch_embed": "torch, Embedder.embed", "torch_backend": "torch, module only",
            "audiontt2020_eager": "AudioNTT2020 eager reference", "cnn14": "PANNs CNN14",
        }
        for name, label in names.items():
            for b in bs:
                frac = t["fraction_of_sgemm"].get(name, {}).get(b)
                extra = f" ({100 * frac:.0f} % of sgemm)" if frac is not None else ""
                out.append((f"{label}, batch {b}", f"{rate[name][b]:.1f}x real time{extra}", "", ""))
        best = max(t["fraction_of_sgemm"]["onnx_embed"].values())
        out.append(("TARGET ONNX fraction of sgemm (best batch)", f"{100 * best:.0f} %", ">= 50 %", yes(best >= 0.5)))
        for b in bs:
            r1 = rate["onnx_embed"][b] / rate["audiontt2020_eager"][b]
            r2 = rate["onnx_embed"][b] / rate["cnn14"][b]
            out.append((f"TARGET ONNX / AudioNTT2020 eager, batch {b}", f"{r1:.2f}x", ">= 1.5x", yes(r1 >= 1.5)))
            out.append((f"TARGET ONNX / CNN14, batch {b}", f"{r2:.1f}x", ">= 10x", yes(r2 >= 10)))
    if "e2e" in res:
        e = res["e2e"]
        r = e["audio_seconds_per_second"]
        label = f"{e['files']} files, {e['audio_seconds']:.0f} s audio"
        out.append((f"decode only ({label})", f"{r['decode_only']:.1f}x real time", "", ""))
        out.append(("compute only (same audio, decoded)", f"{r['compute_only']:.1f}x real time", "", ""))
        out.append(("CLI end to end (fresh process)", f"{r['cli']:.1f}x real time", "", ""))
        out.append(("TARGET CLI / min(decode, compute)", f"{100 * e['cli_over_bound']:.0f} %", ">= 70 %", yes(e["cli_over_bound"] >= 0.7)))
    if "memory" in res:
        m = res["memory"]
        long_label = f"{m['long_seconds'] / 3600:g} h" if m["long_seconds"] >= 3600 else f"{m['long_seconds'] / 60:g} min"
        for mode in ("clip", "frames"):
            s, l, lim = m[mode]["short"]["peak_rss_mb"], m[mode]["long"]["peak_rss_mb"], m[mode]["limit_mb"]
            out.append((f"peak RSS, 10 s file, {mode} output", f"{s:.0f} MB", "", ""))
            out.append((f"TARGET peak RSS, {long_label} file, {mode} output", f"{l:.0f} MB", f"<= {lim:.0f} MB", yes(l <= lim)))
        s, l = (m["frames-in-memory"][k]["peak_rss_mb"] for k in ("short", "long"))
        out.append(("peak RSS, 10 s file, Embedder.embed_frames (returns the frames)", f"{s:.0f} MB", "", ""))
        out.append((f"peak RSS, {long_label} file, Embedder.embed_frames (returns the frames)", f"{l:.0f} MB", "", ""))
    if "startup" in res:
        s = res["startup"]
        clean = not s["heavy_modules_after_import"]
        measured = f"{s['import_s']:.3f} s" + ("" if clean else f" (imports {s['heavy_modules_after_import']})")
        out.append(("TARGET import audioembed", measured, "<= 0.3 s, no torch", yes(s["import_s"] <= 0.3 and clean)))
        first = s["first_embedding_s"]
        out.append(("TARGET first embedding, fresh process (load + 10 s file)", f"{first:.3f} s", "<= 1 s", yes(first <= 1.0)))
    return out


def format_table(table: list[tuple[str, str, str, str]]) -> str:
    head = ("figure", "measured", "target", "met")
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, table)])


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import onnxruntime
    import torch

    return {
        "cpu": cpu, "cores": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
        "numpy": np.__version__, "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
    }


def main() -> None:
    a = ARGS
    a.workdir.mkdir(parents=True, exist_ok=True)
    from audioembed.config import ModelConfig

    model = Path(a.model) if a.model else corpus.random_model(a.workdir)
    cfg = ModelConfig.load(model / "config.json")
    res: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": a.quick, "model": str(model), "machine": machine()}
    short = corpus.long_file(a.workdir, 10)
    if "throughput" not in a.skip:
        print("throughput ...", file=sys.stderr)
        res["throughput"] = throughput(model, cfg, a.threads, a.batch_sizes, a.rounds, a.slot_s)
    if "e2e" not in a.skip:
        print(f"end to end ({a.files} files) ...", file=sys.stderr)
        folder, summary = corpus.folder(a.workdir, a.files)
        res["e2e"] = {"corpus": summary, **end_to_end(model, folder, a.threads, min(4, os.cpu_count() or 1))}
    if "memory" not in a.skip:
        print(f"memory ({a.long_seconds} s file) ...", file=sys.stderr)
        res["memory"] = memory(model, short, corpus.long_file(a.workdir, a.long_seconds), a.long_seconds)
    if "startup" not in a.skip:
        print("start-up ...", file=sys.stderr)
        res["startup"] = startup(model, short)
    res["machine"]["load_average_end"] = os.getloadavg()
    table = rows(res)
    res["table"] = [dict(zip(("figure", "measured", "target", "met"), r)) for r in table]
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"bench-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}{'-quick' if a.quick else ''}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    m = res["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, {a.threads} threads, load {m['load_average'][0]:.2f} -> {m['load_average_end'][0]:.2f}")
    print(format_table(table))
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
