"""Where a run's state comes from and goes: checkpoints that resume exactly (every weight, optimizer moment, random
stream and mixup bank, per rank), and an exported model's encoder to start from (--init-from).
Each function takes the Trainer (train/loop.py) as `t`; loop imports this module, not the other way round."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import model_folder
from .. import record
from ..config import ModelConfig
from ..errors import ModelError, TrainingError
from ..nn.weights import load_weights
from .control import gather


def state_of(t) -> dict:
    """Everything a run needs to go on exactly: weights, optimizer, step, record, and each rank's random streams."""
    per_rank = gather(t.dist, {"gen": t.gen.get_state(), "neg_gen": t.neg_gen.get_state(), "bank": t.views.bank.state_dict(),
                               "rng": torch.get_rng_state()})
    return {"step": t.step, "elapsed": t.elapsed, "history": t.history, "settings": t.s.to_dict(),
            "cache": t.cache.folder.name, "world": t.dist.world, "init": t.init, "sessions": t.sessions, "online": t.online.state_dict(),
            "target": t.target.state_dict(), "opt": t.opt.state_dict(), "ranks": per_rank}


def save(t, path: Path) -> None:
    """Write the checkpoint atomically (rank 0): a stop during the write leaves the previous one whole."""
    state = state_of(t)  # every rank joins the gather; only rank 0 writes
    if not t.dist.main:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failed or interrupted save: the previous checkpoint stands


CHECKPOINT_KEYS = ("step", "elapsed", "history", "world", "cache", "online", "target", "opt", "ranks")


def load(t, path: Path) -> None:
    """Continue from a checkpoint; a truncated, foreign or incomplete one is a TrainingError before any step."""
    advice = "delete it to start over, or name this run's file as checkpoint in --config"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
    except Exception as exc:  # truncated or not a torch file: torch raises several types
        raise TrainingError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); {advice}") from exc
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise TrainingError(f"{path}: not a complete checkpoint (missing {', '.join(missing)}); {advice}")
    if state["world"] != t.dist.world:
        raise TrainingError(f"{path}: saved with {state['world']} processes, resuming with {t.dist.world}; "
                            f"resume with as many processes")
    if state["cache"] != t.cache.folder.name:
        t.log(f"warning: {path} was trained on another data cache ({state['cache']})")
    try:
        t.online.load_state_dict(state["online"])
        t.target.load_state_dict(state["target"])
        t.opt.load_state_dict(state["opt"])
        mine = state["ranks"][t.dist.rank]
        t.gen.set_state(mine["gen"])
        t.neg_gen.set_state(mine["neg_gen"])
        t.views.bank.load_state_dict(mine["bank"])
        torch.set_rng_state(mine["rng"])
        step, elapsed, history = int(state["step"]), float(state["elapsed"]), list(state["history"])
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise TrainingError(f"{path}: does not match this run's settings or is damaged ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); {advice}") from exc
    t.step, t.elapsed, t.history = step, elapsed, history
    t.init = state.get("init")  # checkpoints before start_from existed have none
    # Checkpoints before sessions were recorded: their steps so far as one session of unknown wall time.
    t.sessions = [dict(x) for x in state.get("sessions") or ([{"from_step": 0, "to_step": step, "wall_seconds": None}] if step else [])]


ENCODER = ("n_blocks", "channels", "mlp_hidden", "dim", "readout")  # what the network is, beyond its weights' shapes


def start_from(t, folder: Path, cfg: ModelConfig, step: int = 0, name: str | None = None) -> None:
    """Start from an exported model's encoder (a snapshot, a released model) instead of random weights: to go
    on with a run whose checkpoint is lost (step = the snapshot's step, so the schedule and --steps carry on),
    or to train a model further on other audio (step 0). An export holds the encoder only, so the projector,
    predictor, negatives' head, optimizer moments and mixup bank start anew, and the target starts as a copy
    of the loaded encoder. The random streams are drawn afresh for the step, so a continued run does not
    replay the crops of its first steps. Recorded in config.json and the card (t.init)."""
    label = name or Path(folder).name  # a name, not a path of this machine (it goes into config.json)
    for field in ModelConfig.FRONTEND:  # what the encoder sees: a start from other weights needs them equal
        if getattr(cfg, field) != getattr(t.cfg, field):
            raise ModelError(f"{label}: made with {field}={getattr(cfg, field)}, this run's log-mels use "
                             f"{getattr(t.cfg, field)}; its weights would see other inputs than they learned from")
    if not 0 <= step < t.total_steps:
        raise TrainingError(f"{label}: start step {step} is not before the run's last step ({t.total_steps}); "
                            f"raise --steps")
    weights = Path(folder) / model_folder.SAFETENSORS
    load_weights(t.online.encoder, weights, against="this run's encoder")
    # The weights' shapes fix blocks, channels and the MLP's width; not how a frame is read out: a stacked
    # readout's MLP (dim less the conv map) fits an MLP readout of that dim.
    for field in ("dim", "readout"):
        if getattr(cfg, field) != getattr(t.cfg, field):
            raise ModelError(f"{label}: made with {field}={getattr(cfg, field)!r}, this run's encoder has "
                             f"{getattr(t.cfg, field)!r}; leave the architecture to --init-from, which takes the model's")
    t.target.encoder.load_state_dict(t.online.encoder.state_dict())  # copied in place: layouts kept
    salt = 1_000_003 * (step + 1)
    t.gen.manual_seed(t.s.seed * 1000 + t.dist.rank + salt)
    t.neg_gen.manual_seed(t.s.seed * 1000 + t.dist.rank + 500 + salt)
    torch.manual_seed(t.s.seed + salt)
    train = record.load(folder).training
    t.step = step
    t.init = {"model": label, "sha256": model_folder.sha256(weights), "step": step,
              "norm_mean": cfg.norm_mean, "norm_std": cfg.norm_std,
              **{f"its_{k}": train[k] for k in ("steps", "samples", "train_seconds") if k in train}}
    drift = abs(cfg.norm_mean - t.cfg.norm_mean) + abs(cfg.norm_std - t.cfg.norm_std)
    if drift > 1e-3 * t.cfg.norm_std and t.dist.main:
        t.log(f"warning: {label} was normalised with log-mel mean {cfg.norm_mean:.4f}, std {cfg.norm_std:.4f}; "
              f"this data has {t.cfg.norm_mean:.4f}, {t.cfg.norm_std:.4f}, and the new model will use these")
