"""Stopping a run cleanly, alone or under torchrun: signals, where a process sits, and the per-step vote."""

from __future__ import annotations

import dataclasses
import signal
import threading

import torch
import torch.distributed as tdist

STOP_TIME, STOP_SIGNAL = 1, 2  # why ranks stop early; the larger wins the vote


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


def gather(dist: Dist, item) -> list:
    """Every rank's `item`, in rank order (every rank must call it)."""
    if dist.world == 1:
        return [item]
    out = [None] * dist.world
    tdist.all_gather_object(out, item)
    return out


def agree(dist: Dist, mine: int, group) -> int:
    """The largest of every rank's `mine`: each rank asks at every step, so all act at the same step
    (a stop decided by one rank's clock or signal would leave the others waiting in a collective)."""
    if dist.world == 1:
        return mine
    vote = torch.tensor([mine])  # on a CPU (gloo) group: no GPU sync per step
    tdist.all_reduce(vote, op=tdist.ReduceOp.MAX, group=group)
    return int(vote.item())
