"""`audioembed evaluate`: linear-probe accuracy of models next to baselines and peers, as a table and JSON.

Imports nothing heavy at module level: `import audioembed.cli` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

BASELINES = ("logmel-stats", "random-init")
DEFAULT_BASELINES = "logmel-stats,random-init,peers"


from ..console import BackendOpt, BatchSizeOpt, PrecisionOpt
from ..console import err as _err
from ..model_folder import ONNX


def parse_baselines(text: str) -> list[str]:
    """'logmel-stats,random-init,peers' -> row names in order; 'peers' means every known peer; 'none' none."""
    from .peers import PEERS

    names: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if token in ("", "none"):
            continue
        expanded = list(PEERS) if token == "peers" else [token]
        for name in expanded:
            if name not in BASELINES + PEERS:
                raise typer.BadParameter(
                    f"unknown baseline {name!r}; choose from {', '.join(BASELINES + PEERS)}, peers or none",
                    param_hint="--baselines",
                )
            if name not in names:
                names.append(name)
    return names


def _model_rows(models: list[str], backend: str, batch_size: int, precision: str = "auto"):
    from .. import Embedder
    from ..console import model_notes
    from ..errors import AudioEmbedError
    from .features import ModelExtractor
    from .harness import Row

    rows, configs = [], []
    for name in models:
        try:
            with model_notes():
                embedder = Embedder(None if name == "default" else name, backend=backend, batch_size=batch_size,
                                    precision=precision)
        except AudioEmbedError as exc:
            rows.append(Row(name, "model", note=str(exc), failed=True))
            continue
        rows.append(Row(name, "model", ModelExtractor(name, embedder)))
        configs.append(embedder.config)
    return rows, configs


def _architectures(configs: list) -> list:
    """One config per distinct architecture (blocks, channels, widths, readout) among the evaluated models, in
    order: random-init is read out the way each model is, since a readout alone moves random weights' scores."""
    seen, out = set(), []
    for cfg in configs:
        # the network as built: mlp_hidden unset and mlp_hidden equal to the MLP's output are one network
        key = (cfg.n_mels, cfg.channels, cfg.n_blocks, cfg.hidden, cfg.dim, cfg.readout)
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def architecture_label(cfg, full: bool = False) -> str:
    """How a random-init row names its architecture; `full` when the short form would name two of them alike."""
    if full:
        return f"{cfg.n_mels} mels, {cfg.n_blocks} blocks × {cfg.channels} channels, MLP {cfg.hidden}, {cfg.readout} {cfg.dim}-d"
    return f"{cfg.n_blocks} blocks, {cfg.readout} {cfg.dim}-d"


def random_init_names(archs: list) -> list[str]:
    """One distinct row name per architecture (a report is keyed by row name: two alike would overwrite each other)."""
    if len(archs) == 1:
        return ["random-init"]
    short = [architecture_label(a) for a in archs]
    return [f"random-init ({label if short.count(label) == 1 else architecture_label(a, full=True)})"
            for a, label in zip(archs, short)]


def _baseline_rows(names: list[str], configs: list, cache: Path, backend: str, batch_size: int, precision: str = "auto"):
    from .. import Embedder, backends
    from ..errors import AudioEmbedError, install_hint
    from . import baselines, peers
    from .features import ModelExtractor
    from .harness import Row

    rows = []
    cfg = configs[0]
    archs = _architectures(configs)
    for name in names:
        if name == "logmel-stats":
            rows.append(Row(name, "baseline", baselines.logmel_stats(cfg)))
        elif name == "random-init" and not backends.torch_available():
            rows.append(Row(name, "baseline", note=f"needs torch to build: {install_hint('torch')}"))
        elif name == "random-init":
            for arch, row in zip(archs, random_init_names(archs)):
                try:
                    folder = baselines.random_init_folder(arch, cache)
                except Exception as exc:  # torch's exporter raises its own types: a row's failure, not the run's
                    rows.append(Row(row, "baseline", note=f"cannot build it ({type(exc).__name__}: {exc})", failed=True))
                    continue
                if not (folder / ONNX).is_file():  # onnx is not installed: export was not possible
                    if backend in ("onnx", "openvino"):
                        rows.append(Row(row, "baseline", note=f"--backend {backend} needs the onnx package to export it: pip install onnx"))
                        continue
                    backend_used, precision_used = "torch", "auto"
                else:
                    backend_used, precision_used = backend, precision
                try:
                    rows.append(Row(row, "baseline", ModelExtractor(row, Embedder(folder, backend=backend_used, batch_size=batch_size,
                                                                                 precision=precision_used))))
                except AudioEmbedError as exc:
                    rows.append(Row(row, "baseline", note=str(exc), failed=True))
        else:
            reason = peers.missing(name)
            if reason is not None:
                rows.append(Row(name, "peer", note=reason))
                continue
            try:
                rows.append(Row(name, "peer", peers.load(name)))
            except ImportError as exc:  # installed but missing a dependency of its own
                rows.append(Row(name, "peer", note=f"not importable ({exc})"))
            except Exception as exc:  # a broken optional install is reported, not fatal
                rows.append(Row(name, "peer", note=f"failed to load ({type(exc).__name__}: {exc})", failed=True))
    return rows


def evaluate(
    datasets: List[Path] = typer.Argument(
        ..., help="Labelled datasets: folders DATA/<label>/*.wav (or with a manifest.csv), or CSV manifests path,label[,split|fold]."
    ),
    model: Optional[List[str]] = typer.Option(
        None, "--model", "-m", help="Model to evaluate, repeatable: hub id, local folder, 'default', or 'none' (baselines only)."
    ),
    baselines: str = typer.Option(
        DEFAULT_BASELINES, "--baselines", help="Comma list of logmel-stats, random-init, resemblyzer, crepe-tiny, peers (both), or none."
    ),
    folds: int = typer.Option(5, "--folds", min=2, help="k of stratified k-fold when a dataset gives no split or fold column."),
    seeds: int = typer.Option(3, "--seeds", min=1, help="Repeats with different fold and validation shuffles."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write settings, per-run numbers and notes here."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache of embeddings and probe results (default: ~/.cache/audioembed/eval)."),
    backend: str = BackendOpt,
    precision: str = PrecisionOpt,
    batch_size: int = BatchSizeOpt,
) -> None:
    """Linear-probe accuracy (frozen embeddings, logistic regression) of models next to baselines and peers."""
    from .. import backends
    from ..config import ModelConfig
    from ..errors import AudioEmbedError
    from . import harness, probe, report
    from .dataset import load_dataset
    from .features import default_cache

    names = parse_baselines(baselines)
    try:
        probe.require_sklearn()
        backends.choose_precision(backends.choose(backend, precision=precision), precision)
        loaded = [load_dataset(path) for path in datasets]
        for ds in loaded:  # refuse unscorable splits before any embedding work
            probe.plan(ds.labels, ds.split, ds.fold, folds=folds, seeds=seeds)
    except AudioEmbedError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    names_seen = [ds.name for ds in loaded]
    twice = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if twice:
        _err(f"error: two datasets are named {', '.join(twice)} (the folder's or CSV file's name); rename one")
        raise typer.Exit(2)
    cache = (cache or default_cache()).expanduser()
    models = list(dict.fromkeys(m for m in (model or ["default"]) if m != "none"))
    rows, configs = _model_rows(models, backend, batch_size, precision)
    configs = configs or [ModelConfig()]
    cfg = configs[0]
    rows += _baseline_rows(names, configs, cache, backend, batch_size, precision)
    if not any(r.extractor for r in rows):
        for row in rows:
            _err(f"error: {row.name}: {row.note}")
        _err("error: nothing to evaluate (no model loaded and no baseline available)")
        raise typer.Exit(2)
    try:
        cells = harness.run(loaded, rows, cache, folds=folds, seeds=seeds, log=_err)
    except AudioEmbedError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    typer.echo(report.markdown(loaded, rows, cells), nl=False)
    if json_path is not None:
        settings = {
            "folds": folds,
            "seeds": seeds,
            "c_grid": list(probe.C_GRID),
            "backend": backend,
            "precision": precision,
            "batch_size": batch_size,
            "cache": str(cache),
            "baselines_config": cfg.name,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(loaded, rows, cells, settings), indent=2) + "\n")
    for cell in cells:
        for message in cell.failures:
            _err(f"  {cell.row}: {message}")
    # 1 when the table lacks a number or compares rows on different clips; clips that no row could read are left
    # out of every row alike (listed, marked *), and the table is whole: 0 (docs/evaluate.md, "Exit status")
    if any(r.failed for r in rows) or any(c.error for c in cells) or harness.uneven(cells):
        raise typer.Exit(1)
