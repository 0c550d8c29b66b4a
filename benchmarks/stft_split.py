"""ONNX Runtime with the graph's own STFT (a DFT convolution) against the graph cut after its STFT and fed by
scipy's FFT (backends/graph_cut.py, the default): time per window, side by side in one process.

    python benchmarks/stft_split.py [--model models/audioembed-base ...] [--seconds 1 10] [--threads 1 2]
                                    [--rounds 9] [--json PATH] [--folder AUDIO --files 300]

Each round runs both ways once per (model, length, threads), alternating which goes first; the figures are the
medians over rounds, and the ratio is graph / fft per round, then its median (> 1: the FFT is faster). The
largest difference between the two ways' frames is printed beside them. Pause other work on the cores first.
With --folder: --files audio files spread evenly over the folder's sorted list are embedded both ways through
Embedder.embed (clip vectors, real audio); the largest difference and the lowest cosine are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audioembed.backends.onnx import OnnxBackend  # noqa: E402
from audioembed.config import ModelConfig  # noqa: E402
from audioembed.mel import centre_pad  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", help="model folder (repeatable; default: the shipped one)")
    ap.add_argument("--seconds", type=float, nargs="+", default=[1.0, 10.0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--folder", type=Path, help="real audio to compare the two ways' clip vectors on")
    ap.add_argument("--files", type=int, default=300)
    args = ap.parse_args()
    models = args.model or [Path(__file__).resolve().parent.parent / "models" / "audioembed-base"]
    rng = np.random.default_rng(0)
    rows = []
    for folder in models:
        cfg = ModelConfig.load(folder / "config.json")
        for threads in args.threads:
            ways = {way: OnnxBackend(folder / "model.onnx", cfg, num_threads=threads, stft=way) for way in ("graph", "fft")}
            assert ways["fft"].stft == "fft", f"{folder}: the graph was not cut"
            for seconds in args.seconds:
                n = int(seconds * cfg.sample_rate)
                wave = centre_pad(0.1 * rng.standard_normal(n).astype(np.float32), cfg)[None]
                n_frames = np.array([n // cfg.hop_length + 1], np.int64)
                diff = float(np.abs(ways["fft"].run(wave, n_frames) - ways["graph"].run(wave, n_frames)).max())
                times = {way: [] for way in ways}
                for r in range(args.rounds):
                    for way in (("graph", "fft") if r % 2 == 0 else ("fft", "graph")):
                        start = time.perf_counter()
                        ways[way].run(wave, n_frames)
                        times[way].append(time.perf_counter() - start)
                ratio = statistics.median(g / f for g, f in zip(times["graph"], times["fft"]))
                row = {"model": folder.name, "threads": threads, "seconds": seconds,
                       "graph_ms": round(1000 * statistics.median(times["graph"]), 2),
                       "fft_ms": round(1000 * statistics.median(times["fft"]), 2),
                       "graph_over_fft": round(ratio, 2), "max_abs_diff": diff}
                rows.append(row)
                print(f"{folder.name:28s} {threads} thread(s) {seconds:5.1f} s: graph {row['graph_ms']:7.2f} ms, "
                      f"fft {row['fft_ms']:7.2f} ms, graph / fft {ratio:.2f}x, max |diff| {diff:.2g}", flush=True)
    accuracy = real_audio(models, args.folder, args.files) if args.folder else None
    if args.json:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        args.json.write_text(json.dumps({"rows": rows, "rounds": args.rounds, "machine": platform.machine(),
                                         "cpus": os.cpu_count(), "load_at_end": load, "real_audio": accuracy,
                                         "when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())}, indent=1))


def real_audio(models: list[Path], folder: Path, n: int) -> list[dict]:
    from audioembed import Embedder
    from audioembed.audio import AUDIO_EXTENSIONS

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(n, len(paths))).astype(int)]
    out = []
    for model in models:
        fft = Embedder(model, backend="onnx")
        graph = Embedder(model, backend="onnx")
        graph.backend = OnnxBackend(Path(model) / "model.onnx", graph.config, stft="graph")
        a, b = fft.embed(paths), graph.embed(paths)
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        row = {"model": Path(model).name, "files": len(paths), "max_abs_diff": float(np.abs(a - b).max()),
               "largest_value": float(np.abs(b).max()), "lowest_cosine": float(cosine.min())}
        out.append(row)
        print(f"{row['model']}: {len(paths)} files of {folder}: max |diff| {row['max_abs_diff']:.2g} (largest value "
              f"{row['largest_value']:.3g}), lowest cosine {row['lowest_cosine']:.9f}", flush=True)
    return out


if __name__ == "__main__":
    main()
