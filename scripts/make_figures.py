"""Draw the documentation's pictures from real runs (one command; PNGs into docs/img/).

    pip install ".[docs]"
    python scripts/make_figures.py --models models/audioembed-base runs/audioembed-byola \
        --devset DATA/devsets/zeroad_sfx --bench docs/benchmarks.md --out docs/img

- training.png: positive loss, negative loss and the representation cosine of two views (probe pos)
  and of a position-perturbed copy (probe neg), per logged step, for each model given. The rows
  come from training.json (`training.history`, written by `audioembed pretrain`) or, for folders
  exported before it was kept there, from the checkpoint beside the folder (FOLDER.checkpoints/last.pt).
- map.png: t-SNE of the dev set's clip embeddings coloured by label, for the first model, its
  architecture with random weights, and log-mel statistics (the vectors `audioembed evaluate` uses,
  from its cache when there).
- speed.png: throughput against the peers, from the first results table of docs/benchmarks.md.
Each picture is skipped, with a line saying why, when its inputs are missing.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from audioembed import record

CURVES = [("loss_pos", "positive loss (BYOL)"), ("loss_neg", "negative loss (hinge)"),
          ("probe_pos", "cosine: two views"), ("probe_neg", "cosine: perturbed copy"),
          ("probe_shift", "cosine: 2-4 band frequency shift"), ("cos_hard", "cosine: hardest of k (training)")]


def history(folder: Path) -> list[dict]:
    """The logged training rows of a model folder: config.json, else its checkpoint."""
    rows = record.load(folder).history
    if rows:
        return rows
    ckpt = folder.with_name(folder.name + ".checkpoints") / "last.pt"
    if ckpt.is_file():
        import torch

        return torch.load(ckpt, map_location="cpu", weights_only=True).get("history", [])
    return []


def training_figure(models: list[Path], out: Path) -> str:
    import matplotlib.pyplot as plt

    runs = [(m, history(m)) for m in models]
    missing = [m.name for m, rows in runs if not rows]
    runs = [(m, rows) for m, rows in runs if rows]
    if not runs:
        return f"training.png: skipped, no training history in {', '.join(missing)}"
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.6), constrained_layout=True)
    axes = axes.ravel()
    for ax, (key, title) in zip(axes, CURVES):
        for i, (folder, rows) in enumerate(runs):
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:  # one colour per model in every panel
                ax.plot(*zip(*points), label=folder.name, lw=1.5, color=f"C{i}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.savefig(out / "training.png", dpi=110)
    plt.close(fig)
    note = f" (no history: {', '.join(missing)})" if missing else ""
    return f"training.png: {', '.join(f'{m.name} ({len(r)} rows)' for m, r in runs)}{note}"


def map_figure(model: Path, devset: Path, out: Path, cache: Path | None) -> str:
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from audioembed import Embedder
    from audioembed.eval import baselines
    from audioembed.eval.dataset import load_dataset
    from audioembed.eval.features import ModelExtractor, compute, default_cache

    cache = cache or default_cache()
    ds = load_dataset(devset)
    embedder = Embedder(model, backend="onnx")
    random_folder = baselines.random_init_folder(embedder.config, cache)
    extractors = [ModelExtractor(model.name, embedder), ModelExtractor("random-init", Embedder(random_folder, backend="onnx")),
                  baselines.logmel_stats(embedder.config)]
    classes = sorted(set(ds.labels))
    colours = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), constrained_layout=True)
    for ax, extractor in zip(axes, extractors):
        feats = compute(extractor, ds.paths, cache)
        x = (feats.matrix - feats.matrix.mean(0)) / (feats.matrix.std(0) + 1e-8)  # as the linear probe sees them
        xy = TSNE(n_components=2, perplexity=30, init="pca", random_state=0).fit_transform(x)
        labels = np.array([ds.labels[i] for i in feats.ok])
        for c, name in enumerate(classes):
            pts = xy[labels == name]
            ax.scatter(pts[:, 0], pts[:, 1], s=8, color=colours(c), label=name)
        ax.set_title(extractor.name, fontsize=13)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(classes), 8 if len(classes) <= 8 else 6),
               fontsize=10, markerscale=2.5, frameon=False)
    fig.suptitle(f"t-SNE of clip embeddings: {ds.name} ({len(ds.paths)} clips, {len(classes)} classes)", fontsize=13)
    fig.savefig(out / "map.png", dpi=100)
    plt.close(fig)
    return f"map.png: {ds.name}, {len(ds.paths)} clips, {model.name} / random-init / logmel-stats"


def bench_rows(markdown: Path) -> dict[str, float]:
    """figure -> × real time, from the first results table in docs/benchmarks.md."""
    text = markdown.read_text()
    table = text[text.index("| figure | measured |"):].split("\n\n")[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = re.match(r"([\d.]+)x real time", cells[1]) if len(cells) > 1 else None
        if m:
            rows[cells[0]] = float(m.group(1))
    return rows


def speed_figure(markdown: Path, out: Path) -> str:
    import matplotlib.pyplot as plt

    rows = bench_rows(markdown)
    contenders = [("audioembed, ONNX", "ONNX, Embedder.embed"), ("audioembed, torch", "torch, Embedder.embed"),
                  ("AudioNTT2020 (BYOL-A), eager", "AudioNTT2020 eager reference"), ("PANNs CNN14", "PANNs CNN14")]
    fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
    width = 0.38
    for j, batch in enumerate((1, 32)):
        values = [rows.get(f"{key}, batch {batch}", 0.0) for _, key in contenders]
        bars = ax.barh(np.arange(len(contenders)) + (j - 0.5) * width, values, width, label=f"batch {batch}")
        ax.bar_label(bars, fmt="%.0f×", fontsize=8, padding=2)
    ax.set_yticks(np.arange(len(contenders)), [name for name, _ in contenders])
    ax.invert_yaxis()
    ax.set_xlabel("× real time (10 s clips, 2 CPU cores, higher is better)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(out / "speed.png", dpi=110)
    plt.close(fig)
    return f"speed.png: {len(rows)} throughput rows from {markdown}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, nargs="+", default=[Path("models/audioembed-base")],
                    help="model folders: all get training curves; the first gets the embedding map")
    ap.add_argument("--devset", type=Path, help="labelled dev set for the map (a folder `audioembed evaluate` reads)")
    ap.add_argument("--bench", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--cache", type=Path, help="evaluation vector cache (default: audioembed evaluate's)")
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    args.out.mkdir(parents=True, exist_ok=True)
    print(training_figure(args.models, args.out))
    print(map_figure(args.models[0], args.devset, args.out, args.cache) if args.devset else "map.png: skipped, no --devset")
    print(speed_figure(args.bench, args.out) if args.bench.is_file() else f"speed.png: skipped, no {args.bench}")


if __name__ == "__main__":
    main()
