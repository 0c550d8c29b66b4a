"""ONNX Runtime backend: CPU inference without torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BackendError, ModelError


# Windows per session.run. Each ~10 s window needs ~34 MB of activations (the first conv's output
# dominates) and on a CPU batches of windows were no faster (benchmarks/run.py), so the Embedder
# runs batches in slices of this many rows, each padded only to its own longest window: memory
# stays that of a short file, and short windows cost what their length costs.
ROWS_PER_RUN = 1


class OnnxBackend:
    name = "onnx"
    rows_per_run = ROWS_PER_RUN

    def __init__(self, path: Path, device: str = "auto", num_threads: int | None = None):
        import onnxruntime as ort

        if device not in ("auto", "cpu"):
            raise BackendError(f"the onnx backend runs on the CPU only (device={device!r}); use backend='torch'")
        self.device = "cpu"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = num_threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        # Idle ORT threads sleep instead of spinning: spinning steals the cores that decode workers need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        return self.session.run(["frames"], {"wave": wave, "n_frames": n_frames})[0]
