"""ONNX Runtime backend: CPU inference without torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BackendError, ModelError


# Windows per session.run: each ~10 s window needs ~34 MB of activations (the first conv's output
# dominates), and on a CPU larger batches were no faster in benchmarks/run.py, so a big batch is run
# in slices of this many rows: memory stays that of a short file whatever the batch size.
MAX_ROWS_PER_RUN = 2


class OnnxBackend:
    name = "onnx"

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
        parts = [
            self.session.run(["frames"], {"wave": wave[i : i + MAX_ROWS_PER_RUN], "n_frames": n_frames[i : i + MAX_ROWS_PER_RUN]})[0]
            for i in range(0, len(wave), MAX_ROWS_PER_RUN)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
