"""`audioembed pretrain`: train an encoder on a folder of audio and export a model folder.

This module imports no torch at import time, so `audioembed --help` stays fast and light.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Optional

import typer

from ..console import DeviceOpt, err
from .settings import TrainSettings, read_config


def _default(name: str) -> str:
    """' (default: X)' for a settings flag: its value in TrainSettings, which a --config file or the flag overrides."""
    value = getattr(TrainSettings(), name)
    if isinstance(value, bool):
        return f" (default: --{'' if value else 'no-'}{name.replace('_', '-')})"
    text = ",".join(value) if isinstance(value, tuple) else "off" if value is None else value
    return f" (default: {text})"


def _setting_flags() -> list[inspect.Parameter]:
    """An option for each TrainSettings field marked flag=True, its help and default read from the field: a setting
    is written once. None: not given (the --config file's value, else the default, stands)."""
    params = []
    for f in dataclasses.fields(TrainSettings):
        if not f.metadata["flag"]:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            decls, kind = [f"{flag}/--no-{flag[2:]}"], bool
        else:  # a tuple (the negatives) is given as one comma list
            decls, kind = [flag], str if isinstance(f.default, tuple) else type(f.default)
        option = typer.Option(None, *decls, help=f.metadata["help"] + _default(f.name), show_default=False)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[kind]))
    return params


def pretrain(
    data_dir: Path = typer.Argument(
        ..., help="Folder of audio (any format and rate, searched recursively), or a log-mel cache folder that "
                  "--cache-only built (meta.json, frames.f16): copy that to a GPU machine instead of the audio."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (config.json, model.safetensors, model.onnx, README.md)."),
    config: Optional[Path] = typer.Option(
        None, "--config", help="JSON or YAML file of training settings: any key of docs/training.md's table; flags given "
                               "here override it."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint exactly where it stopped."),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="Start from a model's encoder weights (a folder such as a snapshot, or a hub repo id) instead of random ones: when a run's checkpoint is lost (its step: the config file's init_step), or to train a model further on your audio."),
    device: str = DeviceOpt,
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Log-mel cache (default: ~/.cache/audioembed/melcache)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads."),
    stop_after: Optional[float] = typer.Option(None, "--stop-after", help="Minutes; then checkpoint and exit (continue later with --resume)."),
    cache_only: bool = typer.Option(False, "--cache-only", help="Build the log-mel cache and exit (e.g. before starting several runs on it)."),
    **flags,
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
    from ..files import cache_folder
    from ..nn.device import pick_device
    from .history import log_stderr
    from .loop import Trainer

    given = {k: v for k, v in flags.items() if v is not None}  # flags given override the config file
    init = None
    if init_from is not None and not resume:  # its architecture is this run's unless the flags or config say otherwise
        from .. import model_folder
        from ..hub import DEFAULT_MODEL, DEFAULT_REVISION, fetch
        from .checkpoint import ENCODER

        try:
            # the default model's id at the revision this package pins, as Embedder() would load it
            init = fetch(init_from, DEFAULT_REVISION if init_from == DEFAULT_MODEL else None, model_folder.SAFETENSORS)
        except AudioEmbedError as exc:
            err(f"error: --init-from {init_from}: {exc}")
            raise typer.Exit(2)
    try:
        values, run = read_config(config) if config else ({}, {})
        inherited = {k: getattr(init[1], k) for k in ENCODER} if init else {}
        settings = TrainSettings(**{**inherited, **values, **given})
    except (ValueError, TypeError, OSError) as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    checkpoint, init_step = run.get("checkpoint"), run.get("init_step")
    if threads is not None and threads < 1:
        err(f"error: --threads must be >= 1, not {threads}")
        raise typer.Exit(2)
    if stop_after is not None and not stop_after >= 0:
        err(f"error: --stop-after must be minutes >= 0, not {stop_after}")
        raise typer.Exit(2)
    if init_step is not None and init_from is None:
        err(f"error: {config}: init_step goes with --init-from")
        raise typer.Exit(2)
    if init_from is not None and resume:
        err("error: --resume continues a checkpoint, --init-from starts a new run from a model's weights: pass one")
        raise typer.Exit(2)
    if threads:
        torch.set_num_threads(threads)
    dist, device = _init_distributed(pick_device(device))
    ckpt = Path(checkpoint) if checkpoint else out.with_name(out.name + ".checkpoints") / "last.pt"
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
    elif init is not None:
        resolved, init_cfg = init
        try:
            # by its name, or its hub id: no path of this machine in the config or the card
            name = resolved.folder.name if resolved.source == "local" else f"{resolved.model_id}@{resolved.revision or 'main'}"
            trainer.start_from(resolved.folder, init_cfg, init_step or 0, name=name)
        except AudioEmbedError as exc:
            err(f"error: --init-from {init_from}: {exc}")
            raise typer.Exit(2)
        log(f"started from {name}'s encoder at step {trainer.step} (projector, predictor, optimizer and mixup bank anew)")
        if init_cfg.stack_scale != 1.0:
            log(f"note: {name} scales its conv half by {init_cfg.stack_scale:g} for cosine search; this run exports the "
                "halves as trained (scripts/readout_folder.py --stack-scale-from AUDIO balances them again)")
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


def _with_setting_flags(command):
    """The command's signature for typer: DATA_DIR, --out, --config, the settings' flags, then its other options."""
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(command).parameters.values()
           if p.kind is not inspect.Parameter.VAR_KEYWORD]  # typer passes every parameter by name
    command.__signature__ = inspect.Signature(own[:3] + _setting_flags() + own[3:])
    return command


_with_setting_flags(pretrain)


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
