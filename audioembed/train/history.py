"""The training record: steps' statistics read back from the device, the log's rows, training.json's account.
training_record takes the Trainer (train/loop.py) as `t`; loop imports this module, not the other way round."""

from __future__ import annotations

import sys

import torch


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
    """A log row as one line of the run's log."""
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
    """The run's log goes to stderr, unbuffered: a log file shows each row as it is written."""
    print(msg, file=sys.stderr, flush=True)


def training_record(t) -> dict:
    """training.json's account of the run: settings, amounts, speed, the last row and every logged row."""
    last = t.history[-1] if t.history else {}
    digits = lambda v: float(f"{v:.5g}")  # significant digits: a rate of 3e-5 rounded to 4 decimals read 0.0
    return {"settings": t.s.to_dict(), "steps": t.step, "samples": t.step * t.s.batch_size * t.dist.world,
            "train_seconds": round(t.elapsed, 1), "processes": t.dist.world, "device": t.device,
            "precision": t.precision, **({"init_from": t.init} if t.init else {}),
            "samples_per_s": round(t.samples_per_s, 2), "sessions": t.sessions,
            "final": {k: digits(v) for k, v in last.items() if k not in ("step", "eta_s")},
            # every logged row, for the training curves in the docs (scripts/make_figures.py)
            "history": [{k: v if k == "step" else digits(v) for k, v in row.items() if k != "eta_s"}
                        for row in t.history]}
