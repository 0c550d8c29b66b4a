"""The training loop: views, negatives, losses, EMA, checkpoints that resume exactly, DDP, export."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as tdist
import torch.nn.functional as F

from .. import record
from ..config import ModelConfig
from ..errors import ModelError, TrainingError
from .augment import ViewMaker, crop_fade_norm, post_norm
from .byol import Online, Target, byol_loss, negative_loss
from .data import MelCache
from .negatives import candidates, perturb
from .settings import TrainSettings
from .transfer import to_device

PROBE_SEED = 1234567  # the fixed batch on which representation similarities are tracked
# probe_neg: the five strategies of the first release (comparable across versions);
# probe_shift: the mel axis moved by 2-4 bands (about 2-6 semitones), i.e. pitch.
PROBE_STRATEGIES = ("freq_roll", "freq_shuffle", "time_shuffle", "freq_flip", "time_flip")
STOP_TIME, STOP_SIGNAL = 1, 2
# The least log-mel std a corpus may have: silence (digital zeros) is the log floor everywhere, std ~0, and the
# exported model's norm_std would scale every input up by 1/std (1e-6 gave embeddings ~1.6e5 in size).
# Real audio, even quiet speech, has a std of several nepers.
MIN_STD = 0.01  # why ranks stop early; the larger wins the vote


def native_bfloat16(device: str) -> bool:
    """Whether the device runs bfloat16 arithmetic in hardware: a CUDA GPU that supports it (Ampere on), or a
    CPU with AVX-512 BF16 or AMX. Elsewhere it is emulated: on an AVX2-only CPU a training step took 7x as long
    as in float32 (docs/training.md)."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return False
        try:  # newer torch counts emulation as support unless told not to
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            return torch.cuda.is_bf16_supported()
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # older torch: the narrower checks
        return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(requested: str, device: str) -> tuple[str, str | None]:
    """The precision a run uses, and a warning when an explicit bfloat16 will be emulated (slow)."""
    if requested == "auto":
        return ("bfloat16" if native_bfloat16(device) else "float32"), None
    if requested == "bfloat16" and not native_bfloat16(device):
        return requested, (f"warning: --precision bfloat16 on {device}, which has no bfloat16 arithmetic (no AVX-512 BF16 "
                           "or AMX): it is emulated, a step about 7x slower than in float32; --precision auto picks float32 here")
    return requested, None


class StopSignals:
    """Ctrl-C (SIGINT) or `kill` (SIGTERM, a scheduler's stop, torchrun's) while training asks the loop to stop
    at the next step boundary, where it checkpoints. Raising at once, wherever the signal lands, would save a
    half-done step (weights updated, step not counted) and, under torchrun, leave ranks in different
    collectives. A second Ctrl-C stops at once without saving; SIGTERM never escalates (kill -9 does).
    A background job ignores SIGINT, so SIGTERM must count too. Handlers only exist in the main thread."""

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


@dataclasses.dataclass
class Dist:
    """Where this process sits in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


class Trainer:
    def __init__(self, settings: TrainSettings, cache: MelCache, name: str, device: str = "cpu",
                 dist: Dist = Dist(), log: Callable[[str], None] = print):
        s = self.s = settings
        self.cache, self.device, self.dist, self.log = cache, device, dist, log
        if not cache.std >= MIN_STD:  # also NaN
            raise TrainingError(
                f"{cache.meta.get('data_dir', cache.folder)}: the audio is silent (log-mel std {cache.std:.2g} over "
                f"{len(cache)} clips): a model normalised by it would blow noise up ~{1 / max(cache.std, 1e-12):.0e} times; "
                f"train on audio that has sound in it")
        self.precision, warning = resolve_precision(s.precision, device)
        if warning and dist.main:
            log(warning)
        self.cfg = ModelConfig(name=name, dim=s.dim, channels=s.channels, n_blocks=s.n_blocks, mlp_hidden=s.mlp_hidden,
                               readout=s.readout, norm_mean=cache.mean, norm_std=cache.std)
        torch.manual_seed(s.seed)  # identical initial weights on every rank
        self.online = Online(self.cfg, s.proj_hidden, s.proj_dim, neg_head=bool(s.negatives) and s.neg_space == "head").to(device)
        self.target = Target(self.online).to(device)
        self.net = self.online
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.online, device_ids=[device] if device.startswith("cuda") else None)
            self._flag_group = tdist.new_group(backend="gloo")  # the per-step stop vote, CPU-side
        # fused: one kernel for all parameters instead of a dozen elementwise passes each
        self.opt = torch.optim.Adam(self.online.parameters(), lr=s.lr, weight_decay=s.weight_decay, fused=True)
        self.gen = torch.Generator().manual_seed(s.seed * 1000 + dist.rank)
        # Negatives draw from their own stream, so with and without them the crops and views are identical.
        self.neg_gen = torch.Generator().manual_seed(s.seed * 1000 + dist.rank + 500)
        self.views = ViewMaker(s)
        self._uncropped = dataclasses.replace(s, rrc_freq_scale=(1.0, 1.0))  # the views once freq_crop_until is past
        if device.startswith("cpu"):
            self.online.to(memory_format=torch.channels_last)  # faster convolutions on CPU (oneDNN)
            self.target.to(memory_format=torch.channels_last)
        self.step, self.elapsed, self.history = 0, 0.0, []
        self.init: dict | None = None  # where the weights came from when not random (start_from)
        per_epoch = math.ceil(len(cache) / (s.batch_size * dist.world))
        self.total_steps = s.steps or max(1, math.ceil(s.epochs * per_epoch))
        self.probe = cache.sample(min(64, max(2, len(cache))), s.crop_frames, torch.Generator().manual_seed(PROBE_SEED))

    # Fields of a model's config that decide what its encoder sees; a start from other weights needs them equal.
    FRONTEND = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max", "log_eps")

    def start_from(self, folder: Path, cfg: ModelConfig, step: int = 0, name: str | None = None) -> None:
        """Start from an exported model's encoder (a snapshot, a released model) instead of random weights: to go
        on with a run whose checkpoint is lost (step = the snapshot's step, so the schedule and --steps carry on),
        or to train a model further on other audio (step 0). An export holds the encoder only, so the projector,
        predictor, negatives' head, optimizer moments and mixup bank start anew, and the target starts as a copy
        of the loaded encoder. The random streams are drawn afresh for the step, so a continued run does not
        replay the crops of its first steps. Recorded in config.json and the card (self.init)."""
        from .. import folder as model_folder
        from ..nn.weights import load_weights

        label = name or Path(folder).name  # a name, not a path of this machine (it goes into config.json)
        for field in self.FRONTEND:
            if getattr(cfg, field) != getattr(self.cfg, field):
                raise ModelError(f"{label}: made with {field}={getattr(cfg, field)}, this run's log-mels use "
                                 f"{getattr(self.cfg, field)}; its weights would see other inputs than they learned from")
        if not 0 <= step < self.total_steps:
            raise TrainingError(f"{label}: start step {step} is not before the run's last step ({self.total_steps}); "
                                f"raise --steps")
        weights = Path(folder) / model_folder.SAFETENSORS
        load_weights(self.online.encoder, weights, against="this run's encoder")
        self.target.encoder.load_state_dict(self.online.encoder.state_dict())  # copied in place: layouts kept
        salt = 1_000_003 * (step + 1)
        self.gen.manual_seed(self.s.seed * 1000 + self.dist.rank + salt)
        self.neg_gen.manual_seed(self.s.seed * 1000 + self.dist.rank + 500 + salt)
        torch.manual_seed(self.s.seed + salt)
        train = record.load(folder).training
        self.step = step
        self.init = {"model": label, "sha256": model_folder.sha256(weights), "step": step,
                     "norm_mean": cfg.norm_mean, "norm_std": cfg.norm_std,
                     **{f"its_{k}": train[k] for k in ("steps", "samples", "train_seconds") if k in train}}
        drift = abs(cfg.norm_mean - self.cfg.norm_mean) + abs(cfg.norm_std - self.cfg.norm_std)
        if drift > 1e-3 * self.cfg.norm_std and self.dist.main:
            self.log(f"warning: {label} was normalised with log-mel mean {cfg.norm_mean:.4f}, std {cfg.norm_std:.4f}; "
                     f"this data has {self.cfg.norm_mean:.4f}, {self.cfg.norm_std:.4f}, and the new model will use these")

    # -- one step -------------------------------------------------------------------------
    def autocast(self):
        """bfloat16 autocast on CPU or CUDA (weights, optimizer and BN statistics stay float32)."""
        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")

    @torch.no_grad()
    def hardest_negatives(self, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One negative per anchor: of neg_candidates perturbations, the one whose representation
        the online network (eval mode: no dropout, no batch statistics touched) finds closest."""
        s = self.s
        cands = candidates(anchors, s.negatives, s.neg_segments, self.neg_gen, s.neg_candidates, s.neg_shift, s.neg_semitones)
        if s.neg_candidates == 1:
            return cands[0], None
        k, b = cands.shape[:2]
        self.online.eval()
        with self.autocast():
            y = self.online.embed(torch.cat([anchors, cands.flatten(0, 1)])).float()
        self.online.train()
        cos = F.cosine_similarity(y[b:].view(k, b, -1), y[:b][None], dim=-1)  # (k, B)
        best = cos.max(dim=0)
        return cands[best.indices, torch.arange(b, device=anchors.device)], best.values

    def view_settings(self) -> TrainSettings:
        """The settings the views are made with at this step: the frequency crop stops at freq_crop_until."""
        return self.s if self.step < self.s.freq_crop_until * self.total_steps else self._uncropped

    def lr_at(self, step: int) -> float:
        """Constant lr, then a half cosine from lr_after (default lr) to 0 over the last (1 - lr_decay_from) of the steps."""
        start = self.s.lr_decay_from * self.total_steps
        if step < start or self.total_steps <= start:  # (a benchmark may step past the end of a constant schedule)
            return self.s.lr
        peak = self.s.lr if self.s.lr_after is None else self.s.lr_after
        return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / (self.total_steps - start))))

    def train_step(self, readback: bool = True) -> dict:
        """One step. Its statistics as floats; with readback=False as tensors still on the device, so a
        GPU step need not wait for its results (`read_stats` turns them into the same floats later)."""
        s, dev = self.s, self.device
        for group in self.opt.param_groups:  # set every step: a resumed optimizer carries its saved lr
            group["lr"] = self.lr_at(self.step)
        x = to_device(self.cache.sample(s.batch_size, s.crop_frames, self.gen, balanced=s.balance_folders), dev)
        v1, v2 = self.views(x, self.gen, self.view_settings())
        neg, hard_cos = self.hardest_negatives(v1) if s.negatives else (None, None)
        views = torch.cat([v1, v2])
        with self.autocast():
            z = self.target(views)  # first: its dropout draws must not depend on whether negatives follow
            p, y, neg_out, y_neg = self.net(views, neg, s.neg_space)
        p, z = p.float(), z.float()
        p1, p2 = p.chunk(2)
        z1, z2 = z.chunk(2)
        pos = (byol_loss(p1, z2) + byol_loss(p2, z1)).mean()
        loss = pos
        stats = {"loss_pos": pos.detach()}
        if neg_out is not None:
            if s.neg_space == "head":
                anchor, neg_out = neg_out
            else:
                anchor = z1 if s.neg_space == "projection" else y.float().chunk(2)[0]
            hinge, cos_neg = negative_loss(neg_out.float(), anchor.float(), s.neg_margin)
            loss = loss + s.neg_lambda * hinge.mean()
            stats.update(loss_neg=hinge.mean().detach(), cos_neg=cos_neg.mean().detach())
            if s.neg_repr_margin is not None:  # a cap on the representation's own cosine to the negative
                cap, cos_repr = negative_loss(y_neg.float(), y[: len(y_neg)].float(), s.neg_repr_margin)
                loss = loss + s.neg_lambda * cap.mean()
                stats.update(loss_repr=cap.mean().detach(), cos_repr=cos_repr.mean().detach())
            if hard_cos is not None:
                stats["cos_hard"] = hard_cos.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.target.update(self.online, s.ema)
        self.step += 1
        stats["loss"] = loss.detach()
        stats["lr"] = self.opt.param_groups[0]["lr"]
        return read_stats([stats])[0] if readback else stats

    @torch.no_grad()
    def probe_similarity(self) -> dict:
        """Representation cosine on a fixed batch, eval mode, own RNG (never touches training state).

        pos: two views (resize crop + fader) of a clip; neg: a clip and a position-perturbed copy.
        The method works when pos stays high while neg falls.
        """
        self.online.eval()
        g = torch.Generator().manual_seed(PROBE_SEED)
        x = self.probe.to(self.device)
        emb = self.online.embed
        vs = self.view_settings()  # two views as training makes them now
        a, b = emb(crop_fade_norm(x, g, vs)), emb(crop_fade_norm(x, g, vs))
        anchor = post_norm(x)
        n = emb(perturb(anchor, PROBE_STRATEGIES, self.s.neg_segments, g))
        shifted = emb(perturb(anchor, ("freq_shift",), self.s.neg_segments, g, (2, 4)))
        y = emb(anchor)
        out = {"probe_pos": float(F.cosine_similarity(a, b).mean()),
               "probe_neg": float(F.cosine_similarity(y, n).mean()),
               "probe_shift": float(F.cosine_similarity(y, shifted).mean())}
        self.online.train()
        return out

    # -- checkpoints ----------------------------------------------------------------------
    def _gather(self, item):
        if self.dist.world == 1:
            return [item]
        out = [None] * self.dist.world
        tdist.all_gather_object(out, item)
        return out

    def state_dict(self) -> dict:
        per_rank = self._gather({"gen": self.gen.get_state(), "neg_gen": self.neg_gen.get_state(), "bank": self.views.bank.state_dict(),
                                 "rng": torch.get_rng_state()})
        return {"step": self.step, "elapsed": self.elapsed, "history": self.history, "settings": self.s.to_dict(),
                "cache": self.cache.folder.name, "world": self.dist.world, "init": self.init, "online": self.online.state_dict(),
                "target": self.target.state_dict(), "opt": self.opt.state_dict(), "ranks": per_rank}

    def save(self, path: Path) -> None:
        state = self.state_dict()  # every rank joins the gather; only rank 0 writes
        if not self.dist.main:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)  # after a failed or interrupted save: the previous checkpoint stands

    CHECKPOINT_KEYS = ("step", "elapsed", "history", "world", "cache", "online", "target", "opt", "ranks")

    def load(self, path: Path) -> None:
        """Continue from a checkpoint; a truncated, foreign or incomplete one is a TrainingError before any step."""
        advice = "delete it to start over, or pass --checkpoint with this run's file"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
        except Exception as exc:  # truncated or not a torch file: torch raises several types
            raise TrainingError(f"{path}: not a readable checkpoint ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); {advice}") from exc
        missing = [k for k in self.CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
        if missing:
            raise TrainingError(f"{path}: not a complete checkpoint (missing {', '.join(missing)}); {advice}")
        if state["world"] != self.dist.world:
            raise TrainingError(f"{path}: saved with {state['world']} processes, resuming with {self.dist.world}; "
                                f"resume with as many processes")
        if state["cache"] != self.cache.folder.name:
            self.log(f"warning: {path} was trained on another data cache ({state['cache']})")
        try:
            self.online.load_state_dict(state["online"])
            self.target.load_state_dict(state["target"])
            self.opt.load_state_dict(state["opt"])
            mine = state["ranks"][self.dist.rank]
            self.gen.set_state(mine["gen"])
            self.neg_gen.set_state(mine["neg_gen"])
            self.views.bank.load_state_dict(mine["bank"])
            torch.set_rng_state(mine["rng"])
            step, elapsed, history = int(state["step"]), float(state["elapsed"]), list(state["history"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            raise TrainingError(f"{path}: does not match this run's settings or is damaged ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); {advice}") from exc
        self.step, self.elapsed, self.history = step, elapsed, history
        self.init = state.get("init")  # checkpoints before start_from existed have none

    # -- the loop -------------------------------------------------------------------------
    def agree(self, mine: int) -> int:
        """The largest of every rank's `mine`: each rank asks at every step, so all act at the same step
        (a stop decided by one rank's clock or signal would leave the others waiting in a collective)."""
        if self.dist.world == 1:
            return mine
        vote = torch.tensor([mine])  # on a CPU (gloo) group: no GPU sync per step
        tdist.all_reduce(vote, op=tdist.ReduceOp.MAX, group=self._flag_group)
        return int(vote.item())

    def fit(self, ckpt: Path, stop_after_s: float | None = None, stop_at_step: int | None = None,
            snapshot: Callable[[int], None] | None = None) -> bool:
        """Train to total_steps, checkpointing every ckpt_every steps. False if stopped early.

        `snapshot(step)` is called every snapshot_every steps (after the step, before its checkpoint).
        """
        s = self.s
        self.online.train()
        window_t, window_n = time.perf_counter(), 0
        started = time.perf_counter()
        acc: dict[str, list[float]] = {}
        pending: list[dict] = []  # steps' statistics not yet read back from the device
        with StopSignals() as signals:
            while self.step < self.total_steps:
                t0 = time.perf_counter()
                pending.append(self.train_step(readback=False))
                self.elapsed += time.perf_counter() - t0
                window_n += s.batch_size * self.dist.world
                if self.step % s.log_every == 0 or self.step == self.total_steps:
                    for stats in read_stats(pending):  # the only wait for the GPU between log rows
                        for k, v in stats.items():
                            acc.setdefault(k, []).append(v)
                    pending = []
                    rate = window_n / max(time.perf_counter() - window_t, 1e-9)
                    row = {"step": self.step, **{k: sum(v) / len(v) for k, v in acc.items()},
                           **self.probe_similarity(), "samples_per_s": rate,
                           "eta_s": (self.total_steps - self.step) * s.batch_size * self.dist.world / max(rate, 1e-9)}
                    self.history.append(row)
                    if self.dist.main:
                        self.log(format_row(row, self.total_steps))
                    window_t, window_n, acc = time.perf_counter(), 0, {}
                if snapshot is not None and s.snapshot_every and self.step % s.snapshot_every == 0:
                    snapshot(self.step)
                out_of_time = stop_after_s is not None and time.perf_counter() - started > stop_after_s
                stop = self.agree(STOP_SIGNAL if signals.requested else STOP_TIME if out_of_time else 0)
                if stop == STOP_SIGNAL:
                    self.save(ckpt)
                    if self.dist.main:
                        self.log(f"interrupted at step {self.step}: checkpoint saved to {ckpt}; continue with --resume")
                    raise KeyboardInterrupt
                if self.step % s.ckpt_every == 0:
                    self.save(ckpt)
                if stop == STOP_TIME or (stop_at_step is not None and self.step >= stop_at_step):
                    self.save(ckpt)
                    return self.step >= self.total_steps
        self.save(ckpt)
        return True

    @property
    def samples_per_s(self) -> float:
        """Crops per second of this run's own steps (a run started from exported weights at step N did not train 0..N)."""
        own = self.step - (self.init or {}).get("step", 0)
        return own * self.s.batch_size * self.dist.world / max(self.elapsed, 1e-9)

    def export(self, out: Path, data_summary: dict) -> ModelConfig:
        """Write the encoder as a model folder the Embedder loads (rank 0 only)."""
        from ..nn.export import save_model_folder

        last = self.history[-1] if self.history else {}
        digits = lambda v: float(f"{v:.5g}")  # significant digits: a rate of 3e-5 rounded to 4 decimals read 0.0
        train = {"settings": self.s.to_dict(), "steps": self.step, "samples": self.step * self.s.batch_size * self.dist.world,
                 "train_seconds": round(self.elapsed, 1), "processes": self.dist.world, "device": self.device,
                 "precision": self.precision, **({"init_from": self.init} if self.init else {}),
                 "samples_per_s": round(self.samples_per_s, 2),
                 "final": {k: digits(v) for k, v in last.items() if k not in ("step", "eta_s")},
                 # every logged row, for the training curves in the docs (scripts/make_figures.py)
                 "history": [{k: v if k == "step" else digits(v) for k, v in row.items() if k != "eta_s"}
                             for row in self.history]}
        encoder = self.online.encoder  # save_model_folder exports a copy: training goes on with this one as it is
        encoder.cfg = dataclasses.replace(self.cfg, extra={"training": train, "data": data_summary})
        return save_model_folder(encoder, out, history=self.history)


def read_stats(rows: list[dict]) -> list[dict]:
    """Steps' statistics as floats, read back from the device at once (one wait, not several a step).

    cos_pos is derived from loss_pos in Python, as the step once did right after it."""
    tensors = [v for row in rows for v in row.values() if isinstance(v, torch.Tensor)]
    values = iter(torch.stack([t.float() for t in tensors]).tolist() if tensors else [])
    out = []
    for row in rows:
        floats = {}
        for k, v in row.items():
            floats[k] = next(values) if isinstance(v, torch.Tensor) else v
            if k == "loss_pos":
                floats["cos_pos"] = 1 - floats[k] / 4
        out.append(floats)
    return out


def format_row(row: dict, total: int) -> str:
    parts = [f"step {row['step']}/{total}", f"loss {row['loss']:.4f}", f"cos+ {row['cos_pos']:.3f}"]
    if "cos_neg" in row:
        parts.append(f"cos- {row['cos_neg']:.3f}")
    if "cos_hard" in row:
        parts.append(f"hard {row['cos_hard']:.3f}")
    if "cos_repr" in row:
        parts.append(f"repr {row['cos_repr']:.3f}")
    probe = f"probe pos {row['probe_pos']:.3f} neg {row['probe_neg']:.3f}"
    if "probe_shift" in row:
        probe += f" shift {row['probe_shift']:.3f}"
    parts += [probe, f"{row['samples_per_s']:.1f} samples/s"]
    if "eta_s" in row:
        parts.append(f"eta {row['eta_s'] / 60:.0f} min")
    return " | ".join(parts)


def log_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
