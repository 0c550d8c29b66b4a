"""The training loop: views, negatives, losses, EMA, one step after another, export.

Its other concerns live beside it: precision.py (the arithmetic), control.py (stops and torchrun ranks),
checkpoint.py (save, resume, start from a model), history.py (statistics, log rows, training.json's account)."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as tdist
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import TrainingError
from . import checkpoint
from .augment import ViewMaker, crop_fade_norm, post_norm
from .byol import Online, Target, byol_loss, negative_loss
from .control import STOP_SIGNAL, STOP_TIME, Dist, StopSignals, agree
from .data import MelCache
from .history import format_row, read_stats, training_record
from .negatives import candidates, perturb
from .precision import resolve_precision
from .settings import TrainSettings
from .transfer import to_device

PROBE_SEED = 1234567  # the fixed batch on which representation similarities are tracked
# probe_neg: the five strategies of the first release (comparable across versions);
# probe_shift: the mel axis moved by 2-4 bands (about 2-6 semitones), i.e. pitch.
PROBE_STRATEGIES = ("freq_roll", "freq_shuffle", "time_shuffle", "freq_flip", "time_flip")
# The least log-mel std a corpus may have: silence (digital zeros) is the log floor everywhere, std ~0, and the
# exported model's norm_std would scale every input up by 1/std (1e-6 gave embeddings ~1.6e5 in size).
# Real audio, even quiet speech, has a std of several nepers.
MIN_STD = 0.01


def machine(device: str) -> str:
    """Where a session trained, in a few words: its wall time means little without it (the same run went 3-5x faster
    on a CPU with AVX-512 and AMX than on one with AVX2 only, both 2 cores)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    threads = torch.get_num_threads()
    return f"CPU ({torch.backends.cpu.get_cpu_capability()}), {threads} thread{'s' if threads > 1 else ''}"


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
        self.cfg = ModelConfig(name=name, norm_mean=cache.mean, norm_std=cache.std,
                               **{k: getattr(s, k) for k in ModelConfig.ARCHITECTURE})
        torch.manual_seed(s.seed)  # identical initial weights on every rank
        self.online = Online(self.cfg, s.proj_hidden, s.proj_dim, neg_head=bool(s.negatives) and s.neg_space == "head").to(device)
        self.target = Target(self.online).to(device)
        self.net = self.online
        self._flag_group = None  # the per-step stop vote's group, under torchrun
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
        # One entry per fit() call: the steps it trained and its wall time (a run resumed across machines or
        # sessions says so on its card; the quality issue's compute limit is per run's wall time).
        self.sessions: list[dict] = []
        self.init: dict | None = None  # where the weights came from when not random (start_from)
        per_epoch = math.ceil(len(cache) / (s.batch_size * dist.world))
        self.total_steps = s.steps or max(1, math.ceil(s.epochs * per_epoch))
        self.probe = cache.sample(min(64, max(2, len(cache))), s.crop_frames, torch.Generator().manual_seed(PROBE_SEED))

    def start_from(self, folder: Path, cfg: ModelConfig, step: int = 0, name: str | None = None) -> None:
        """Start from an exported model's encoder instead of random weights (checkpoint.start_from)."""
        checkpoint.start_from(self, folder, cfg, step, name)

    def state_dict(self) -> dict:
        return checkpoint.state_of(self)

    def save(self, path: Path) -> None:
        checkpoint.save(self, path)

    def load(self, path: Path) -> None:
        """Continue from a checkpoint (checkpoint.load): a damaged or foreign one is a TrainingError."""
        checkpoint.load(self, path)

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

    # -- the loop -------------------------------------------------------------------------
    def fit(self, ckpt: Path, stop_after_s: float | None = None, stop_at_step: int | None = None,
            snapshot: Callable[[int], None] | None = None) -> bool:
        """Train to total_steps, checkpointing every ckpt_every steps. False if stopped early.

        `snapshot(step)` is called every snapshot_every steps (after the step, before its checkpoint).
        """
        s = self.s
        self.online.train()
        window_t, window_n = time.perf_counter(), 0
        started = time.perf_counter()
        session = {"from_step": self.step, "to_step": self.step, "wall_seconds": 0.0, "machine": machine(self.device)}
        self.sessions.append(session)

        def save() -> None:  # the session's account goes into the checkpoint with the step it reached
            session.update(to_step=self.step, wall_seconds=round(time.perf_counter() - started, 1))
            self.save(ckpt)
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
                why = STOP_SIGNAL if signals.requested else STOP_TIME if out_of_time else 0
                stop = agree(self.dist, why, self._flag_group)
                if stop == STOP_SIGNAL:
                    save()
                    if self.dist.main:
                        self.log(f"interrupted at step {self.step}: checkpoint saved to {ckpt}; continue with --resume")
                    raise KeyboardInterrupt
                if self.step % s.ckpt_every == 0:
                    save()
                if stop == STOP_TIME or (stop_at_step is not None and self.step >= stop_at_step):
                    save()
                    return self.step >= self.total_steps
        save()
        return True

    @property
    def samples_per_s(self) -> float:
        """Crops per second of this run's own steps (a run started from exported weights at step N did not train 0..N)."""
        own = self.step - (self.init or {}).get("step", 0)
        return own * self.s.batch_size * self.dist.world / max(self.elapsed, 1e-9)

    def export(self, out: Path, data_summary: dict) -> ModelConfig:
        """Write the encoder as a model folder the Embedder loads (rank 0 only)."""
        from ..nn.export import save_model_folder

        train = training_record(self)
        encoder = self.online.encoder  # save_model_folder exports a copy: training goes on with this one as it is
        encoder.cfg = dataclasses.replace(self.cfg, extra={"training": train, "data": data_summary})
        return save_model_folder(encoder, out, history=self.history)


