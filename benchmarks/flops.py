"""FLOP counts per second of audio, for our model and the peers, and a check of ours against model.onnx.

Counting rule: 2 FLOPs per multiply-add of every matrix product the model really computes (each
convolution, each linear layer, the mel matmul); an FFT counts its nominal 2.5 N log2 N for N real
points (what FFT benchmarks quote). Elementwise work (window, power, log, normalisation, masks,
BatchNorm, ReLU, pooling) is left out: it is memory-bound and under 2 % of the total.

The frontend (log-mel) and the CNN are separate terms: the log-mel is either computed before the
graph with numpy's FFT ("fft"), or inside an audioembed 0.1 graph as a strided convolution over the
DFT bins a mel filter uses ("dft"). `graph_products` and `runtime_profile` count the same products from
the ONNX graph itself (shape inference) and from what ONNX Runtime executed (its profile), so the
analytic count is checked against the model, not against itself.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from audioembed import mel
from audioembed.config import ModelConfig

# Operators that are matrix products; ONNX Runtime's fused forms (Conv+ReLU, MatMul+Add) keep the count.
PRODUCT_OPS = ("Conv", "FusedConv", "MatMul", "FusedMatMul", "Gemm", "FusedGemm")


def n_mel_frames(cfg: ModelConfig, seconds: float) -> int:
    return mel.n_frames(int(seconds * cfg.sample_rate), cfg)


def frontend_flops(cfg: ModelConfig, seconds: float = 10.0, form: str = "fft") -> dict[str, float]:
    """The log-mel of a `seconds` clip: "fft" (numpy rfft of every frame) or "dft" (conv over the used bins)."""
    t, k = n_mel_frames(cfg, seconds), mel.used_bins(cfg)
    out = {"mel": 2.0 * t * cfg.n_mels * k}
    if form == "dft":
        out["stft"] = 2.0 * t * (2 * k) * cfg.n_fft
    elif form == "fft":
        out["fft"] = t * 2.5 * cfg.n_fft * math.log2(cfg.n_fft)
    else:
        raise ValueError(f"frontend form {form!r}: expected 'fft' or 'dft'")
    return out


def cnn_flops(cfg: ModelConfig, seconds: float = 10.0) -> dict[str, float]:
    """The encoder on the log-mel of a `seconds` clip: the 3x3 convs at their resolutions, the two linear layers
    (conv map -> hidden -> the MLP's output: dim, or dim less the conv map where the readout stacks it)."""
    f, t, c_in = cfg.n_mels, n_mel_frames(cfg, seconds), 1
    conv = 0.0
    for _ in range(cfg.n_blocks):
        conv += 2.0 * f * t * cfg.channels * c_in * 9
        f, t, c_in = f // 2, t // 2, cfg.channels
    return {"conv": conv, "mlp": 2.0 * t * (cfg.conv_dim * cfg.hidden + cfg.hidden * cfg.mlp_out)}


def audioembed_flops(cfg: ModelConfig, seconds: float = 10.0, frontend: str = "fft") -> dict:
    """FLOPs of one pass over a `seconds` clip (centre-padded): {"frontend": {...}, "cnn": {...}, "total"}."""
    front, cnn = frontend_flops(cfg, seconds, frontend), cnn_flops(cfg, seconds)
    return {"frontend": front, "cnn": cnn, "total": sum(front.values()) + sum(cnn.values())}


def audioembed_flops_per_second(cfg: ModelConfig, frontend: str = "fft") -> float:
    return audioembed_flops(cfg, 10.0, frontend)["total"] / 10.0


def cnn14_flops(seconds: float = 10.0, sr: int = 32000, hop: int = 320, n_fft: int = 1024, n_mels: int = 64) -> float:
    """CNN14 as panns_inference builds it: full-band conv STFT, mel matmul, 6 double-conv blocks, fc1."""
    t = int(seconds * sr) // hop + 1
    bins = n_fft // 2 + 1
    total = 2.0 * t * 2 * bins * n_fft + 2.0 * t * bins * n_mels
    f, c_in = n_mels, 1
    for i, c in enumerate((64, 128, 256, 512, 1024, 2048)):
        total += 2.0 * f * t * 9 * (c_in * c + c * c)
        if i < 5:
            f, t = f // 2, t // 2
        c_in = c
    return total + 2.0 * (2048 * 2048 + 2048 * 527)


# Counting the graph ------------------------------------------------------------------------------


def product_flops(op: str, inputs: list[list[int]], output: list[int], trans_a: bool = False) -> float:
    """2 x multiply-adds of one product node from its shapes: a conv's output elements each take
    C_in/groups x kernel MACs (the weight's shape after its first axis); a MatMul/Gemm's take K."""
    if op.endswith("Conv"):
        per_output = math.prod(inputs[1][1:])
    else:
        per_output = inputs[0][0] if trans_a else inputs[0][-1]
    return 2.0 * math.prod(output) * per_output


def graph_takes_wave(onnx_path: Path) -> bool:
    """audioembed 0.1 graphs take the padded wave (log-mel inside, "dft"); later ones the log-mel ("fft" before it)."""
    import onnx

    return "wave" in {i.name for i in onnx.load(os.fspath(onnx_path), load_external_data=False).graph.input}


def graph_feeds(cfg: ModelConfig, seconds: float, takes_wave: bool, batch: int = 1) -> dict[str, np.ndarray]:
    """The graph's inputs for a batch of `seconds` clips: the padded wave or the normalised log-mel, and n_frames."""
    t = n_mel_frames(cfg, seconds)
    x = np.zeros((batch, int(seconds * cfg.sample_rate) + 2 * (cfg.n_fft // 2)) if takes_wave else (batch, cfg.n_mels, t), np.float32)
    return {"wave" if takes_wave else "mel": x, "n_frames": np.full(batch, t, np.int64)}


def graph_products(onnx_path: Path, cfg: ModelConfig, seconds: float = 10.0) -> list[dict]:
    """The product nodes of model.onnx for one `seconds` clip with their FLOPs, shapes from onnx shape inference."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(os.fspath(onnx_path))
    feeds = graph_feeds(cfg, seconds, "wave" in {i.name for i in model.graph.input})
    for inp in model.graph.input:
        for dim, size in zip(inp.type.tensor_type.shape.dim, feeds[inp.name].shape):
            dim.Clear()
            dim.dim_value = size
    graph = shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {t.name: list(t.dims) for t in graph.initializer}
    for v in [*graph.input, *graph.value_info, *graph.output]:
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    for node in graph.node:
        if node.op_type == "Constant":
            shapes[node.output[0]] = list(next(a.t.dims for a in node.attribute if a.name == "value"))
    out = []
    for node in graph.node:
        if node.op_type not in PRODUCT_OPS:
            continue
        ins, res = [shapes.get(n) for n in node.input], shapes.get(node.output[0])
        if res is None or None in res or any(s is None or None in s for s in ins[:2]):
            raise ValueError(f"{onnx_path}: shape inference left node {node.name} ({node.op_type}) without static shapes: {ins} -> {res}")
        trans_a = any(a.name == "transA" and a.i for a in node.attribute)
        out.append({"op": node.op_type, "inputs": ins, "output": res, "flops": product_flops(node.op_type, ins, res, trans_a)})
    return out


def runtime_profile(onnx_path: Path, cfg: ModelConfig, seconds: float = 10.0, threads: int = 1, calls: int = 5) -> list[dict]:
    """Every node ONNX Runtime executed for one `seconds` clip (ORT_ENABLE_ALL, as the backend runs it), in
    order: op, shapes, FLOPs if a product, and its median kernel time over `calls` calls after a warm-up call."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as backends/onnx.py
    with tempfile.TemporaryDirectory() as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(os.fspath(onnx_path), opts, providers=["CPUExecutionProvider"])
        feeds = graph_feeds(cfg, seconds, any(i.name == "wave" for i in session.get_inputs()))
        for _ in range(1 + calls):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, dict] = {}
    for e in events:
        args = e.get("args", {})
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        node = nodes.setdefault(e["name"], {"op": args.get("op_name"), "us": []})
        node["us"].append(e["dur"])
        # A MatMul whose weight ONNX Runtime pre-packed lists only its activation: K is still its last axis.
        node["inputs"] = [next(iter(s.values())) for s in args.get("input_type_shape", [])]
        node["output"] = next(iter(args["output_type_shape"][0].values())) if args.get("output_type_shape") else []
    out = []
    for name, n in nodes.items():
        flops = product_flops(n["op"], n["inputs"], n["output"]) if n["op"] in PRODUCT_OPS else 0.0
        out.append({"node": name.removesuffix("_kernel_time"), "op": n["op"], "inputs": n["inputs"], "output": n["output"],
                    "flops": flops, "ms": float(np.median(n["us"][1:] or n["us"])) / 1e3})
    return out


def by_op(nodes: list[dict]) -> dict[str, float]:
    """FLOPs of the product nodes summed by op type, and "total"."""
    out: dict[str, float] = {}
    for n in nodes:
        if n["flops"]:
            out[n["op"]] = out.get(n["op"], 0.0) + n["flops"]
    out["total"] = sum(out.values())
    return out


def check(onnx_path: Path, cfg: ModelConfig, seconds: float = 10.0, tolerance: float = 0.03, threads: int = 1) -> dict:
    """Analytic count of what model.onnx holds against the graph walk and ONNX Runtime's profile (kept: where its time goes)."""
    form = "dft" if graph_takes_wave(onnx_path) else "fft"
    analytic = audioembed_flops(cfg, seconds, form)
    in_graph = sum(analytic["cnn"].values()) + (sum(analytic["frontend"].values()) if form == "dft" else 0.0)
    profile, products = runtime_profile(onnx_path, cfg, seconds, threads), graph_products(onnx_path, cfg, seconds)
    graph, runtime = by_op(products), by_op(profile)
    # Products ONNX Runtime ran in a shape the graph does not have: its NCHWc convs pad channels to the
    # CPU's vector block (8 or 16), so a model whose channels are not a multiple of it costs more than it counts.
    shape = lambda n: f"{n['op'].removeprefix('Fused')} -> {n['output']}"  # noqa: E731
    runtime_only = sorted({shape(n) for n in profile if n["flops"]} - {shape(n) for n in products})
    worst = max(abs(graph["total"] / in_graph - 1), abs(runtime["total"] / in_graph - 1))
    return {
        "seconds": seconds, "frontend_form": form, "analytic": analytic, "analytic_in_graph": in_graph,
        "graph": graph, "runtime": runtime, "worst_relative_difference": worst, "tolerance": tolerance,
        "agree": worst <= tolerance, "runtime_only": runtime_only, "threads": threads, "profile": profile,
    }


if __name__ == "__main__":  # the figures docs/benchmarks.md quotes: python benchmarks/flops.py [MODEL_FOLDER]
    import sys

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    cfg = ModelConfig.load(folder / "config.json") if folder else ModelConfig()
    form = "dft" if folder and graph_takes_wave(folder / "model.onnx") else "fft"
    parts = audioembed_flops(cfg, 10.0, form)
    flat = {**parts["frontend"], **parts["cnn"]}
    print(f"{cfg.name}, frontend {form!r}, per 10 s clip: " + ", ".join(f"{k} {v / 1e9:.3f} G" for k, v in flat.items())
          + f" = {parts['total'] / 1e9:.2f} G")
    print(f"per audio second: {parts['total'] / 10 / 1e6:.0f} MFLOP (frontend {sum(parts['frontend'].values()) / 10 / 1e6:.1f}, "
          f"CNN {sum(parts['cnn'].values()) / 10 / 1e6:.1f}); CNN14 per 10 s: {cnn14_flops() / 1e9:.1f} G "
          f"({cnn14_flops() / parts['total']:.0f}x)")
    if folder:
        c = check(folder / "model.onnx", cfg)
        print(f"model.onnx, 10 s clip: analytic {c['analytic_in_graph'] / 1e9:.3f} G in the graph, graph walk "
              f"{c['graph']['total'] / 1e9:.3f} G, ONNX Runtime executed {c['runtime']['total'] / 1e9:.3f} G: "
              f"{'agree' if c['agree'] else 'DISAGREE'} (worst {100 * c['worst_relative_difference']:.2f} %)")
        if c["runtime_only"]:
            print("ONNX Runtime ran products in shapes the graph lacks (NCHWc channel padding): " + ", ".join(c["runtime_only"]))
