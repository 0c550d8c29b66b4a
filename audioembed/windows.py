"""Cut a stream of samples into bounded model windows whose outputs stitch together exactly.

A clip of any length gives the same frame embeddings as one pass over the whole clip: each
window carries `context` log-mel frames of real signal on both sides, and only the outputs
whose receptive field lies inside the window are kept. Memory stays bounded by the window.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import numpy as np

from .config import ModelConfig

WINDOW_FRAMES = 128  # output frames per window: 128 x 80 ms = 10.24 s with the default config


def context_frames(cfg: ModelConfig) -> int:
    """Log-mel frames of real signal a window carries on each side: at least the encoder's receptive-field reach
    (each block's 3x3 conv reaches 2**b frames, its pooling up to 2**(b+1) - 1 more), a multiple of 2**n_blocks.
    24 for the default 3 blocks, 8 for AudioNTT2022's 2."""
    return cfg.time_reduction * max(cfg.n_blocks, 2)


@dataclasses.dataclass
class Window:
    """Centre-padded samples for log-mel frames [m0, m0 + n_frames) and the outputs to keep."""

    wave: np.ndarray
    n_frames: int
    first_out: int  # global index of the window's first output frame
    keep: tuple[int, int]  # global output range [start, stop) this window is responsible for


def min_samples(cfg: ModelConfig) -> int:
    """Shorter clips are zero-padded to this: one output frame, and enough for reflect padding."""
    return max(cfg.time_reduction * cfg.hop_length, cfg.n_fft // 2 + 1)


def cut(
    blocks: Iterable[np.ndarray],
    cfg: ModelConfig,
    window_frames: int = WINDOW_FRAMES,
    context: int | None = None,
) -> Iterator[Window]:
    """Yield Windows covering every output frame of the clip whose samples arrive as `blocks`."""
    r, hop, n_fft = cfg.time_reduction, cfg.hop_length, cfg.n_fft
    context = context_frames(cfg) if context is None else context
    pad = n_fft // 2
    if context % r:
        raise ValueError(f"context {context} must be a multiple of {r}")
    pending: list[np.ndarray] = []  # raw samples before the left reflect padding can be applied
    n_pending = 0
    buf = np.zeros(0, np.float32)  # padded signal xp[buf_start : buf_start + len(buf)]
    buf_start = 0
    j0 = 0  # next output frame to emit

    def cut(j1: int, total_mel: int | None) -> Window:
        m0 = max(0, r * j0 - context)
        m1 = r * j1 + context if total_mel is None else min(total_mel, r * j1 + context)
        s0, s1 = m0 * hop, (m1 - 1) * hop + n_fft
        wave = buf[s0 - buf_start : s1 - buf_start].copy()  # a copy: a view would keep the whole buffer alive while queued
        return Window(wave, m1 - m0, m0 // r, (j0, j1))

    started = False
    for block in blocks:
        if not started:
            pending.append(block)
            n_pending += len(block)
            if n_pending < min_samples(cfg):
                continue
            x = np.concatenate(pending)
            pending = []
            buf = np.concatenate([x[1 : pad + 1][::-1], x])
            started = True
        else:
            buf = np.concatenate([buf, block])
        while True:
            j1 = j0 + window_frames
            if buf_start + len(buf) < (r * j1 + context - 1) * hop + n_fft:
                break
            yield cut(j1, None)
            j0 = j1
            new_start = (r * j0 - context) * hop
            buf, buf_start = buf[new_start - buf_start :], new_start
    if not started:
        x = np.concatenate(pending) if pending else np.zeros(0, np.float32)
        x = np.concatenate([x, np.zeros(min_samples(cfg) - len(x), np.float32)])
        buf = np.concatenate([x[1 : pad + 1][::-1], x])
    n_signal = len(buf) + buf_start - pad  # samples of x seen
    buf = np.concatenate([buf, buf[-pad - 1 : -1][::-1]])
    total_mel = n_signal // hop + 1
    total_out = total_mel // r
    while j0 < total_out:
        j1 = min(j0 + window_frames, total_out)
        yield cut(j1, total_mel)
        j0 = j1
