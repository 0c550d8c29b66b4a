"""`audioembed pretrain`: train an encoder on a folder of audio and export a model folder.

This module imports no torch at import time, so `audioembed --help` stays fast and light.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..console import DeviceOpt, err
from .settings import TrainSettings


_DEFAULTS = TrainSettings()


def _default(name: str) -> str:
    """' (default: X)' for a settings flag: its value in TrainSettings, which a --config file or the flag overrides."""
    value = getattr(_DEFAULTS, name)
    if isinstance(value, bool):
        return f" (default: --{'' if value else 'no-'}{name.replace('_', '-')})"
    text = ",".join(value) if isinstance(value, tuple) else "off" if value is None else value
    return f" (default: {text})"


def pretrain(
    data_dir: Path = typer.Argument(
        ..., help="Folder of audio (any format and rate, searched recursively), or a log-mel cache folder that "
                  "--cache-only built (meta.json, frames.f16): copy that to a GPU machine instead of the audio."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (config.json, model.safetensors, model.onnx, README.md)."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON file of training settings; flags given here override it."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides --epochs; 0: use --epochs)." + _default("steps")),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Epochs; one epoch = one crop per cached clip." + _default("epochs")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Crops per step per process." + _default("batch_size")),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate of Adam (> 0)." + _default("lr")),
    lr_decay_from: Optional[float] = typer.Option(
        None, "--lr-decay-from", help="Fraction of the steps after which lr falls on a half cosine to 0 at the end (1: constant)." + _default("lr_decay_from")),
    lr_after: Optional[float] = typer.Option(
        None, "--lr-after", help="The lr the half cosine starts from (default: --lr): a drop at --lr-decay-from, then the decay."),
    freq_crop_until: Optional[float] = typer.Option(
        None, "--freq-crop-until", help="Fraction of the steps after which the views' frequency crop stops (1: never)." + _default("freq_crop_until")),
    dim: Optional[int] = typer.Option(None, "--dim", help="Embedding size." + _default("dim")),
    negatives: Optional[str] = typer.Option(None, "--negatives", help="'all', 'freq' (the frequency-axis ones), 'none' (plain BYOL-A) or a comma list of freq_roll, freq_shuffle, freq_flip, freq_shift, pitch_shift, time_shuffle, time_flip." + _default("negatives")),
    neg_lambda: Optional[float] = typer.Option(None, "--neg-lambda", help="Weight of the negative hinge." + _default("neg_lambda")),
    neg_margin: Optional[float] = typer.Option(None, "--neg-margin", help="Cosine below which a negative costs nothing." + _default("neg_margin")),
    neg_repr_margin: Optional[float] = typer.Option(None, "--neg-repr-margin", help="Also cap the clip embeddings' cosine to their negatives at this value (a second hinge, same weight)." + _default("neg_repr_margin")),
    neg_segments: Optional[int] = typer.Option(None, "--neg-segments", help="Bands/segments the shuffles cut into." + _default("neg_segments")),
    neg_space: Optional[str] = typer.Option(None, "--neg-space", help="projection (BYOL's space), representation (the clip embedding) or head (a projector of their own)." + _default("neg_space")),
    neg_candidates: Optional[int] = typer.Option(None, "--neg-candidates", help="Hardest of k: draw k perturbations per crop, keep the one the network finds most similar (1: random)." + _default("neg_candidates")),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto (bfloat16 where the device has it in hardware, else float32), bfloat16 (autocast; weights and statistics stay float32) or float32." + _default("precision")),
    balance_folders: Optional[bool] = typer.Option(None, "--balance-folders/--no-balance-folders", help="Draw every top-level folder of DATA_DIR (e.g. music/ speech/ sfx/) equally often." + _default("balance_folders")),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed of the initial weights, crops, views and negatives." + _default("seed")),
    snapshot_every: Optional[int] = typer.Option(None, "--snapshot-every", help="Also export the model every N steps to OUT.snapshots/step-NNNNNN (for choosing a step on dev sets); 0: never." + _default("snapshot_every")),
    device: str = DeviceOpt,
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint exactly where it stopped."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start from a model's encoder weights (a folder such as a snapshot, or a hub repo id) instead of random ones: when a run's checkpoint is lost, or to train a model further on your audio."),
    init_step: Optional[int] = typer.Option(None, "--init-step", help="With --init-from: the step to go on from (a lost run's snapshot step, so --steps and the lr schedule carry on); default 0."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint file (default: OUT.checkpoints/last.pt)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Log-mel cache (default: ~/.cache/audioembed/melcache)."),
    stop_after: Optional[float] = typer.Option(None, "--stop-after", help="Minutes; then checkpoint and exit (continue later with --resume)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    cache_only: bool = typer.Option(False, "--cache-only", help="Build the log-mel cache and exit (e.g. before starting several runs on it)."),
) -> None:
    """Pretrain an encoder self-supervised (BYOL-A + adversarial negatives) and export it."""
    from ..errors import install_hint

    missing = missing_dependencies(export=not cache_only)
    if missing:  # before any step: a run that trains for hours must be able to write its model
        why = "to build the cache" if cache_only else "to train and to export model.safetensors and model.onnx"
        err(f"error: pretrain needs {' and '.join(missing)} ({why}): {install_hint('train')}")
        raise typer.Exit(2)
    import torch

    from ..config import ModelConfig
    from ..errors import AudioEmbedError
    from ..nn.device import pick_device
    from ..files import cache_folder
    from .history import log_stderr
    from .loop import Trainer

    flags = dict(steps=steps, epochs=epochs, batch_size=batch_size, lr=lr, lr_decay_from=lr_decay_from, lr_after=lr_after, freq_crop_until=freq_crop_until, dim=dim, negatives=negatives,
                 neg_lambda=neg_lambda, neg_margin=neg_margin, neg_repr_margin=neg_repr_margin, neg_segments=neg_segments, neg_space=neg_space,
                 neg_candidates=neg_candidates, precision=precision, balance_folders=balance_folders, seed=seed,
                 snapshot_every=snapshot_every)
    flags = {k: v for k, v in flags.items() if v is not None}
    try:
        settings = TrainSettings.from_file(config, **flags) if config else TrainSettings(**flags)
    except (ValueError, TypeError, OSError) as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    if threads is not None and threads < 1:
        err(f"error: --threads must be >= 1, not {threads}")
        raise typer.Exit(2)
    if stop_after is not None and not stop_after >= 0:
        err(f"error: --stop-after must be minutes >= 0, not {stop_after}")
        raise typer.Exit(2)
    if init_step is not None and init_from is None:
        err("error: --init-step goes with --init-from")
        raise typer.Exit(2)
    if init_from is not None and resume:
        err("error: --resume continues a checkpoint, --init-from starts a new run from a model's weights: pass one")
        raise typer.Exit(2)
    if threads:
        torch.set_num_threads(threads)
    dist, device = _init_distributed(pick_device(device))
    ckpt = checkpoint or out.with_name(out.name + ".checkpoints") / "last.pt"
    if resume and not ckpt.exists():
        err(f"error: --resume: no checkpoint at {ckpt}")
        raise typer.Exit(2)
    if not resume and ckpt.exists():
        err(f"error: {ckpt} exists: pass --resume to continue it, or delete it to start over")
        raise typer.Exit(2)
    cache_root = cache_dir or cache_folder("melcache")
    log = log_stderr if dist.main else (lambda msg: None)
    try:
        cache = _cache_on_rank0(data_dir, cache_root, ModelConfig(), settings, dist, log)
    except AudioEmbedError as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    if cache_only:
        log(f"cache ready: {cache.folder} ({len(cache)} clips, {cache.hours:.2f} h)")
        return
    log(f"data: {len(cache)} clips, {cache.hours:.2f} h, log-mel mean {cache.mean:.3f} std {cache.std:.3f}; "
        f"hours by top folder: {', '.join(f'{k} {v:.2f}' for k, v in cache.group_hours().items())}"
        + (" (drawn equally)" if settings.balance_folders else ""))
    try:
        trainer = Trainer(settings, cache, out.name, device, dist, log)
        if resume:
            trainer.load(ckpt)
    except AudioEmbedError as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    if resume:
        log(f"resumed at step {trainer.step} from {ckpt}")
    elif init_from is not None:
        from .. import folder as model_folder
        from ..hub import DEFAULT_MODEL, DEFAULT_REVISION, fetch

        try:
            # the default model's id at the revision this package pins, as Embedder() would load it
            resolved, init_cfg = fetch(init_from, DEFAULT_REVISION if init_from == DEFAULT_MODEL else None, model_folder.SAFETENSORS)
            # by its name, or its hub id: no path of this machine in the config or the card
            name = resolved.folder.name if resolved.source == "local" else f"{resolved.model_id}@{resolved.revision or 'main'}"
            trainer.start_from(resolved.folder, init_cfg, init_step or 0, name=name)
        except AudioEmbedError as exc:
            err(f"error: --init-from {init_from}: {exc}")
            raise typer.Exit(2)
        log(f"started from {name}'s encoder at step {trainer.step} (projector, predictor, optimizer and mixup bank anew)")
    log(f"training {trainer.total_steps} steps × {settings.batch_size} on {device} ({dist.world} process(es), {trainer.precision}); "
        f"negatives: {', '.join(settings.negatives) or 'none (BYOL-A)'}")
    summary = {k: cache.meta[k] for k in ("files", "clips", "frames")}
    summary["data_dir"] = Path(cache.meta["data_dir"]).name  # the folder's name: no path of this machine in a card
    summary["hours"] = round(cache.hours, 3)
    summary["hours_by_folder"] = {k: round(v, 3) for k, v in cache.group_hours().items()}

    def snapshot(step: int) -> None:
        folder = out.with_name(out.name + ".snapshots") / f"step-{step:06d}"
        if dist.main and not (folder / "config.json").exists():
            trainer.export(folder, summary)
            log(f"snapshot: {folder}")

    finished = trainer.fit(ckpt, stop_after_s=None if stop_after is None else stop_after * 60, snapshot=snapshot)
    if not finished:
        log(f"stopped at step {trainer.step}/{trainer.total_steps}; continue with --resume")
        return
    if dist.main:
        trainer.export(out, summary)
        log(f"wrote {out} ({trainer.step} steps, {trainer.elapsed / 60:.1f} min, "
            f"{trainer.samples_per_s:.1f} samples/s)")


# What a run imports to train and to export (torch's ONNX exporter needs the onnx package, which [torch] lacks).
EXPORT_MODULES = {"torch": "PyTorch", "safetensors.torch": "safetensors", "onnx": "onnx"}


def missing_dependencies(export: bool = True) -> list[str]:
    """The packages of [train] that do not import here, by name (export=False: torch only, for --cache-only)."""
    import importlib

    missing = []
    for module, name in EXPORT_MODULES.items() if export else [("torch", "PyTorch")]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(name)
    return missing


def _init_distributed(device: str):
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: join the group (nccl on GPUs, gloo on CPUs)."""
    from .control import Dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch
    import torch.distributed as tdist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    tdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world), device


def _cache_on_rank0(data_dir, cache_root, cfg, settings, dist, log):
    """Rank 0 builds the log-mel cache; the others wait for it and open the same files."""
    from .data import MelCache, build_cache, is_cache_folder

    if is_cache_folder(data_dir):
        return MelCache(data_dir)

    if dist.world == 1:
        return build_cache(data_dir, cache_root, cfg, settings.workers, log)
    import torch.distributed as tdist

    if dist.main:
        cache = build_cache(data_dir, cache_root, cfg, settings.workers, log)
    tdist.barrier()
    if not dist.main:
        cache = build_cache(data_dir, cache_root, cfg, settings.workers, log)
    return cache
