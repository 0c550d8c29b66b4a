"""Optional int8 model: ONNX Runtime dynamic quantisation of the encoder, its speed and its embedding change.

python benchmarks/quantize.py [--model FOLDER] [--workdir DIR] [--clips N]

The frontend (STFT conv, mel matmul) stays float: int8 power spectra would wreck the log-mel.
The CNN convs and the MLP matmuls get int8 weights (activations quantised per call). Reported:
throughput of both in interleaved rounds, cosine between float and int8 clip embeddings, and how
often each clip's nearest neighbour (cosine) is the same under both. With random weights the
accuracy figures only bound the numerical change; rerun with --model on trained weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import corpus  # noqa: E402

FLOAT_NODES = ("/frontend/Conv", "/frontend/MatMul")


class _Calibration:
    """Calibration inputs for static quantisation: centre-padded 10 s windows of the benchmark corpus."""

    def __init__(self, files: list[Path], cfg, n: int = 16):
        from audioembed import audio

        pad, self.items = cfg.n_fft // 2, []
        for path in files[:n]:
            x = audio.load(path, target_sr=cfg.sample_rate)[: 10 * cfg.sample_rate]
            x = np.pad(x, (pad, pad), mode="reflect")[None].astype(np.float32)
            self.items.append({"wave": x, "n_frames": np.array([(x.shape[1] - cfg.n_fft) // cfg.hop_length + 1], np.int64)})

    def get_next(self):
        return self.items.pop() if self.items else None


def quantised_folder(model: Path, out: Path, static_files: list[Path] | None = None) -> Path:
    """A copy of the model folder whose model.onnx is int8 (dynamic, or static QDQ when given calibration files)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from audioembed.config import ModelConfig
    from audioembed.model_folder import sha256

    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "README.md"):
        if (model / name).exists():
            shutil.copy(model / name, out / name)
    cfg = ModelConfig.load(model / "config.json")
    src, dst = str(model / "model.onnx"), str(out / "model.onnx")
    kw = dict(op_types_to_quantize=["Conv", "MatMul"], nodes_to_exclude=list(FLOAT_NODES), weight_type=QuantType.QInt8)
    if static_files:
        quantize_static(src, dst, _Calibration(static_files, cfg), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, **kw)
    else:
        quantize_dynamic(src, dst, **kw)
    cfg = ModelConfig.from_dict({**cfg.to_dict(), "sha256": {**cfg.sha256, "model.onnx": sha256(out / "model.onnx")}})
    cfg.save(out / "config.json")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path)
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "audioembed-bench")
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    from audioembed import Embedder, audio

    model = a.model or corpus.random_model(a.workdir)
    folder, _ = corpus.folder(a.workdir, a.clips)
    files = sorted(f for f in folder.rglob("*") if f.suffix in audio.AUDIO_EXTENSIONS)
    folders = {
        "float": model,
        "int8_dynamic": quantised_folder(model, a.workdir / "model-int8-dynamic"),
        "int8_static": quantised_folder(model, a.workdir / "model-int8-static", static_files=files[::-1]),
    }
    emb = {name: Embedder(f, backend="onnx", batch_size=1) for name, f in folders.items()}
    rng = np.random.default_rng(1)
    clip = [0.1 * rng.standard_normal(160000, dtype=np.float32)]
    rates = {name: [] for name in emb}
    for name in emb:
        emb[name].embed(clip, sr=16000)
    for _ in range(a.rounds):
        for name, e in emb.items():
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < 1.0:
                e.embed(clip, sr=16000)
                n += 1
            rates[name].append(10.0 * n / (time.perf_counter() - t0))
    vec = {name: e.embed(files) for name, e in emb.items()}
    unit = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in vec.items()}
    nn = {}
    for k, u in unit.items():
        sim = u @ u.T
        np.fill_diagonal(sim, -np.inf)
        nn[k] = sim.argmax(axis=1)
    res = {"model": str(model), "clips": len(files), "rounds": rates}
    for name in folders:
        cosine = (unit["float"] * unit[name]).sum(axis=1)
        res[name] = {
            "x_real_time": statistics.median(rates[name]),
            "speed_vs_float": statistics.median(rates[name]) / statistics.median(rates["float"]),
            "cosine_to_float_mean": float(cosine.mean()),
            "cosine_to_float_min": float(cosine.min()),
            "nearest_neighbour_agreement": float((nn["float"] == nn[name]).mean()),
            "onnx_mb": (folders[name] / "model.onnx").stat().st_size / 2**20,
        }
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
