"""Our exported log-mel frontend (the used DFT bins as one strided conv) against ONNX's own STFT operator
(opset 17) computing the same log-mel: do they agree, and which is faster in ONNX Runtime?

    python benchmarks/stft_operator.py [--seconds 10] [--rounds 7] [--threads 2] [--json PATH]

Both graphs run interleaved in the same process with the same threads; the figure is the median time per
clip over rounds (each round: as many calls as fit in 1 s, at least one). This is what docs/benchmarks.md
quotes for keeping the conv frontend.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audioembed import mel  # noqa: E402
from audioembed.config import ModelConfig  # noqa: E402


def conv_frontend(cfg: ModelConfig) -> bytes:
    """The package's LogMel module exported alone: input (1, N) centre-padded wave -> (1, n_mels, T)."""
    import warnings

    import torch

    from audioembed.nn import LogMel

    buf = io.BytesIO()
    wave = torch.zeros(1, cfg.sample_rate * 2 + cfg.n_fft)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, as nn/export.py
        torch.onnx.export(LogMel(cfg).eval(), (wave,), buf, input_names=["wave"], output_names=["logmel"],
                          dynamic_axes={"wave": {1: "samples"}, "logmel": {2: "time"}}, opset_version=17, dynamo=False)
    return buf.getvalue()


def stft_frontend(cfg: ModelConfig) -> bytes:
    """The same log-mel with ONNX's STFT operator: STFT -> power -> the used bins -> mel matmul -> log."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = mel.used_bins(cfg)
    consts = {
        "step": np.array(cfg.hop_length, np.int64),
        "window": mel.hann_window(cfg).astype(np.float32),
        "length": np.array(cfg.n_fft, np.int64),
        "fb": mel.mel_filterbank(cfg)[:k].T.astype(np.float32).copy(),  # (n_mels, K)
        "axes_last": np.array([-1], np.int64),
        "start": np.array([0], np.int64),
        "stop": np.array([k], np.int64),
        "axis_bins": np.array([1], np.int64),
        "eps": np.array(cfg.log_eps, np.float32),
    }
    nodes = [
        helper.make_node("Unsqueeze", ["wave", "axes_last"], ["signal"]),  # (1, N, 1)
        helper.make_node("STFT", ["signal", "step", "window", "length"], ["spec"], onesided=1),  # (1, T, F, 2)
        helper.make_node("Mul", ["spec", "spec"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axes_last"], ["power"], keepdims=0),  # (1, T, F)
        helper.make_node("Transpose", ["power"], ["power_ft"], perm=[0, 2, 1]),  # (1, F, T)
        helper.make_node("Slice", ["power_ft", "start", "stop", "axis_bins"], ["used"]),  # (1, K, T)
        helper.make_node("MatMul", ["fb", "used"], ["melpow"]),  # (1, n_mels, T)
        helper.make_node("Add", ["melpow", "eps"], ["shifted"]),
        helper.make_node("Log", ["shifted"], ["logmel"]),
    ]
    graph = helper.make_graph(
        nodes, "stft_logmel",
        [helper.make_tensor_value_info("wave", TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, [1, cfg.n_mels, "time"])],
        [numpy_helper.from_array(v, name) for name, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def session(model: bytes, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as backends/onnx.py
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args()
    cfg = ModelConfig()
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(int(cfg.sample_rate * args.seconds))).astype(np.float32)
    padded = np.pad(x, cfg.n_fft // 2, mode="reflect")[None]
    sessions = {"conv (ours)": session(conv_frontend(cfg), args.threads),
                "STFT operator": session(stft_frontend(cfg), args.threads)}
    outs = {name: s.run(None, {"wave": padded})[0] for name, s in sessions.items()}
    # The STFT operator frames only whole windows: compare the frames both produce.
    t = min(o.shape[-1] for o in outs.values())
    diff = float(np.abs(outs["conv (ours)"][..., :t] - outs["STFT operator"][..., :t]).max())
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, s in sessions.items():
            calls, start = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - start < 1.0:
                s.run(None, {"wave": padded})
                calls += 1
            times[name].append((time.perf_counter() - start) / calls * 1000)
    result = {
        "clip_seconds": args.seconds, "threads": args.threads, "rounds": args.rounds,
        "ms_per_clip_median": {name: round(statistics.median(v), 2) for name, v in times.items()},
        "max_abs_diff_logmel": diff, "frames_compared": t,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "when": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
