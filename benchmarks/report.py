"""The benchmark's report: the table of figures against targets, and the stability of targets over runs.

Pure functions of run.py's results, kept apart from the measuring (and tested: tests/test_benchmarks.py).
"""

from __future__ import annotations

import statistics
from typing import NamedTuple

GEMM_LABELS = {"gemm_numpy_f32": "numpy float32", "gemm_torch_f32": "torch.matmul float32", "gemm_torch_bf16": "torch.matmul bfloat16"}


class Row(NamedTuple):
    figure: str
    measured: str
    target: str = ""
    met: str = ""
    value: float | None = None  # TARGET rows: the number compared with `goal`
    goal: float | None = None


def target(figure: str, value: float, goal: float, measured: str, shown_goal: str, at_most: bool = False, ok: bool = True) -> Row:
    met = ok and (value <= goal if at_most else value >= goal)
    return Row(f"TARGET {figure}", measured, shown_goal, "yes" if met else "NO", value, goal)


def span(values: list[float], fmt: str = "{:.0f}") -> str:
    return fmt.format(min(values)) if len(values) == 1 else f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def blas_rows(blas: dict) -> list[Row]:
    """What numpy's OpenBLAS was told and which kernel it runs."""
    out: list[Row] = []
    unset = ", ".join(f"{k}={v}" for k, v in blas["unset"].items()) or "neither was set"
    out.append(Row("OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE", f"unset in this process ({unset})"))
    nb = blas["numpy"]
    kernel = f"OpenBLAS {nb.get('version')}, {nb.get('architecture')} kernel" if nb else "no BLAS found"
    if blas["numpy_kernel_below_cpu"]:
        kernel += ", below this CPU's AVX-512"
    out.append(Row("numpy's BLAS (threadpoolctl)", kernel))
    as_set = blas.get("numpy_gemm_as_set")
    if as_set:
        out.append(Row(f"GEMM numpy float32 with {unset} (fresh process)", f"{as_set['gflops']:.1f} GFLOP/s ({as_set['architecture']} kernel; not the limit)"))
    return out


def flop_rows(fc: dict) -> list[Row]:
    """The model's FLOPs, their check against model.onnx, and where ONNX Runtime's time goes."""
    out: list[Row] = []
    a = fc["analytic"]
    front = sum(a["frontend"].values())
    where = "in the graph, DFT conv" if fc["frontend_form"] == "dft" else "numpy FFT, before the graph"
    out.append(Row("model FLOPs (flops.py)", f"{a['total'] / fc['seconds'] / 1e6:.0f} MFLOP per audio s: frontend "
                   f"{front / fc['seconds'] / 1e6:.1f} ({where}), CNN {sum(a['cnn'].values()) / fc['seconds'] / 1e6:.1f}"))
    measured = (f"{fc['analytic_in_graph'] / 1e9:.3f} / {fc['graph']['total'] / 1e9:.3f} / {fc['runtime']['total'] / 1e9:.3f} G"
                f" per {fc['seconds']:g} s")
    if fc["runtime_only"]:
        measured += f"; ONNX Runtime ran products in shapes the graph lacks (NCHWc channel padding): {', '.join(fc['runtime_only'])}"
    if not fc["agree"]:
        parts = lambda d: ", ".join(f"{k} {v / 1e9:.3f}" for k, v in d.items() if k != "total")  # noqa: E731
        measured += f" (analytic {parts({**a['cnn'], **(a['frontend'] if fc['frontend_form'] == 'dft' else {})})}; graph {parts(fc['graph'])}; runtime {parts(fc['runtime'])})"
    out.append(target("FLOPs in model.onnx: flops.py / graph walk / ONNX Runtime", 100 * fc["worst_relative_difference"],
                      100 * fc["tolerance"], measured, f"within {100 * fc['tolerance']:.0f} %", at_most=True))
    out.extend(profile_rows(fc))
    return out


def profile_split(fc: dict) -> tuple[float, float, float]:
    """(kernel ms, of which products, their FLOPs) of the profiled clip."""
    products = [n for n in fc["profile"] if n["flops"]]
    return sum(n["ms"] for n in fc["profile"]), sum(n["ms"] for n in products), sum(n["flops"] for n in products)


def profile_rows(fc: dict, top: int = 4) -> list[Row]:
    """Where ONNX Runtime's time goes on one clip: products against the rest, then the slowest nodes."""
    nodes = fc["profile"]
    total, p_ms, p_flops = profile_split(fc)
    head = f"ONNX Runtime profile, {fc['seconds']:g} s clip, {fc['threads']} threads"
    out = [Row(head, f"{total:.1f} ms in kernels: products {p_ms:.1f} ms ({p_flops / p_ms / 1e6:.0f} GFLOP/s), "
                     f"the rest {total - p_ms:.1f} ms")]
    for n in sorted(nodes, key=lambda n: -n["ms"])[:top]:
        rate = f", {n['flops'] / n['ms'] / 1e6:.0f} GFLOP/s" if n["flops"] else ""
        shapes = " x ".join(str(s) for s in n["inputs"][:2])
        out.append(Row(f"  {n['op']} {shapes} -> {n['output']}", f"{n['ms']:.2f} ms ({100 * n['ms'] / total:.0f} %{rate})"))
    return out


def rows(res: dict, common: dict) -> list[Row]:
    """The summary table of one run."""
    out = blas_rows(common["blas"])
    if "throughput" in res:
        t = res["throughput"]
        for name, label in GEMM_LABELS.items():
            if name not in t["gemm_gflops"]:  # bfloat16 where the CPU only emulates it
                out.append(Row(f"GEMM {label}, 2048 x 2048", "not timed: no bfloat16 arithmetic in this CPU (emulated)"))
                continue
            out.append(Row(f"GEMM {label}, 2048 x 2048",
                           f"{t['gemm_gflops'][name]:.1f} GFLOP/s (rounds {span([x / 1e9 for x in t['rounds'][name][0]])})"))
        out.append(Row("limit: the best GEMM above", f"{t['limit_gflops']:.1f} GFLOP/s ({GEMM_LABELS[t['limit']]})"))
    out.extend(flop_rows(common["flop_check"]))
    if common.get("onnx_stft") == "fft":
        out.append(Row("ONNX Runtime's STFT", "scipy's FFT before the graph cut after its STFT (backends/graph_cut.py): "
                       "the rates below count the FFT's FLOPs; the profile rows are of the whole model.onnx"))
    if "throughput" in res:
        rate, rounds = t["audio_seconds_per_second"], t["rounds"]
        bs = sorted(rate["onnx_embed"])
        model_flops = common["model_flops_per_audio_second"]
        names = {
            "onnx_embed": "ONNX, Embedder.embed", "onnx_backend": "ONNX, backend.run only",
            "logmel_numpy": "numpy log-mel only (audioembed.mel)",
            "torch_embed": "torch, Embedder.embed", "torch_backend": "torch, module only",
            "openvino_bf16_embed": "OpenVINO bf16, Embedder.embed", "openvino_bf16_backend": "OpenVINO bf16, backend.run only",
            "audiontt2020_eager": "AudioNTT2020 eager reference", "cnn14": "PANNs CNN14",
        }
        limit = t["limit_gflops"] * 1e9
        for name, label in names.items():
            for b in bs if name in rate else []:
                frac = "" if name in ("cnn14", "logmel_numpy") else f"{100 * rate[name][b] * model_flops / limit:.0f} % of limit; "
                out.append(Row(f"{label}, batch {b}", f"{rate[name][b]:.1f}x real time ({frac}rounds {span(rounds[name][b])})"))
        best = max(rate["onnx_embed"][b] * model_flops / limit for b in bs)
        out.append(target("ONNX fraction of limit (best batch)", 100 * best, 50, f"{100 * best:.0f} %", ">= 50 %"))
        out.extend(fraction_reason_rows(t, common, max(bs, key=lambda b: rate["onnx_embed"][b])))
        for b in bs:
            r1 = rate["onnx_embed"][b] / rate["audiontt2020_eager"][b]
            r2 = rate["onnx_embed"][b] / rate["cnn14"][b]
            out.append(target(f"ONNX / AudioNTT2020 eager, batch {b}", r1, 1.5, f"{r1:.2f}x", ">= 1.5x"))
            out.append(target(f"ONNX / CNN14, batch {b}", r2, 10, f"{r2:.1f}x", ">= 10x"))
        for b in bs if "openvino_bf16_embed" in rate else []:  # a CPU with native bfloat16 and openvino installed
            alone = rate["openvino_bf16_backend"][b] / rate["onnx_backend"][b]
            embed = rate["openvino_bf16_embed"][b] / rate["onnx_embed"][b]
            out.append(target(f"OpenVINO bf16 / ONNX f32, model alone, batch {b}", alone, 3, f"{alone:.2f}x", ">= 3x"))
            out.append(target(f"OpenVINO bf16 / ONNX f32, Embedder.embed, batch {b}", embed, 2, f"{embed:.2f}x", ">= 2x"))
    if "e2e" in res:
        e = res["e2e"]
        r, w = e["audio_seconds_per_second"], e["wall_s"]
        label = f"{e['files']} files, {e['audio_seconds']:.0f} s audio"
        out.append(Row(f"decode only ({label})", f"{r['decode_only']:.1f}x real time (rounds {span(w['decode_only'], '{:.2f}')} s)"))
        out.append(Row("compute only (same audio, decoded)", f"{r['compute_only']:.1f}x real time (rounds {span(w['compute_only'], '{:.2f}')} s)"))
        out.append(Row("CLI end to end (fresh process)", f"{r['cli']:.1f}x real time (rounds {span(w['cli'], '{:.2f}')} s)"))
        out.append(Row("CLI on one file (its fixed cost: start-up, model load)", f"{e['cli_fixed_s']:.2f} s"))
        out.append(target("CLI / min(decode, compute)", 100 * e["cli_over_bound"], 70, f"{100 * e['cli_over_bound']:.0f} %", ">= 70 %"))
    if "memory" in res:
        m = res["memory"]
        long_label = f"{m['long_seconds'] / 3600:g} h" if m["long_seconds"] >= 3600 else f"{m['long_seconds'] / 60:g} min"
        for mode in ("clip", "frames"):
            s, l, lim = m[mode]["short"]["peak_rss_mb"], m[mode]["long"]["peak_rss_mb"], m[mode]["limit_mb"]
            out.append(Row(f"peak RSS, 10 s file, {mode} output", f"{s:.0f} MB"))
            out.append(target(f"peak RSS, {long_label} file, {mode} output", l, lim, f"{l:.0f} MB", f"<= {lim:.0f} MB", at_most=True))
        s, l = (m["frames-in-memory"][k]["peak_rss_mb"] for k in ("short", "long"))
        out.append(Row("peak RSS, 10 s file, Embedder.embed_frames (returns the frames)", f"{s:.0f} MB"))
        out.append(Row(f"peak RSS, {long_label} file, Embedder.embed_frames (returns the frames)", f"{l:.0f} MB"))
    if "startup" in res:
        s = res["startup"]
        clean = not s["heavy_modules_after_import"]
        measured = f"{s['import_s']:.3f} s" + ("" if clean else f" (imports {s['heavy_modules_after_import']})")
        out.append(target("import audioembed", s["import_s"], 0.3, measured, "<= 0.3 s, no torch", at_most=True, ok=clean))
        first = s["first_embedding_s"]
        out.append(target("first embedding, fresh process (load + 10 s file)", first, 1.0, f"{first:.3f} s", "<= 1 s", at_most=True))
    return out


def fraction_reason_rows(t: dict, common: dict, b: int) -> list[Row]:
    """What the fraction is made of: the float32 limit (the model's precision), and a clip's time split
    into the graph's products (at their own GFLOP/s), its other kernels, and the rest (outside the session)."""
    fc, limit = common["flop_check"], t["limit_gflops"] * 1e9
    rate, model_flops = t["audio_seconds_per_second"]["onnx_embed"][b], common["model_flops_per_audio_second"]
    f32 = max(v for n, v in t["gemm_gflops"].items() if n.endswith("f32")) * 1e9
    kernels, p_ms, p_flops = profile_split(fc)
    clip_ms = 1e3 * fc["seconds"] / rate
    logmel_ms = 1e3 * fc["seconds"] / t["audio_seconds_per_second"]["logmel_numpy"][b] if fc["frontend_form"] == "fft" else 0.0
    logmel = f"the numpy log-mel {logmel_ms:.1f} ms (its own contender), " if logmel_ms else ""
    return [
        Row("  ONNX fraction of the best float32 GEMM (the model's precision)", f"{100 * rate * model_flops / f32:.0f} %"),
        Row(f"  a {fc['seconds']:g} s clip, ONNX Embedder.embed, batch {b}",
            f"{clip_ms:.1f} ms: {logmel}the graph's products {p_ms:.1f} ms at {p_flops / p_ms / 1e6:.0f} GFLOP/s "
            f"({100 * p_flops / p_ms / 1e6 / (limit / 1e9):.0f} % of limit) and its other kernels {kernels - p_ms:.1f} ms "
            f"(kernel times: the profile), the rest (windows, pooling, Python) {clip_ms - logmel_ms - kernels:.1f} ms"),
    ]


def stability(tables: list[list[Row]]) -> list[dict]:
    """Per TARGET row over the runs: values, median, spread (max - min), and whether spread < |median - target|."""
    out = []
    for row in (r for r in tables[0] if r.value is not None):
        values = [next(r.value for r in t if r.figure == row.figure) for t in tables]
        goals = [next(r.goal for r in t if r.figure == row.figure) for t in tables]
        med, goal = statistics.median(values), statistics.median(goals)
        spread = max(values) - min(values)
        out.append({"figure": row.figure, "values": values, "median": med, "target": goal, "spread": spread,
                    "distance": abs(med - goal), "stable": spread < abs(med - goal)})
    return out


def format_table(table: list[tuple], head: tuple = ("figure", "measured", "target", "met")) -> str:
    table = [tuple(r)[: len(head)] for r in table]
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, table)])


def stability_table(stab: list[dict]) -> str:
    g = lambda v: f"{v:.3g}"  # noqa: E731
    n = len(stab[0]["values"]) if stab else 0
    head = ("target", *(f"run {i + 1}" for i in range(n)), "median", "spread", "|median - target|", "spread smaller")
    body = [(s["figure"].removeprefix("TARGET "), *map(g, s["values"]), g(s["median"]), g(s["spread"]), g(s["distance"]),
             "yes" if s["stable"] else "NO") for s in stab]
    return format_table(body, head)
