"""ONNX Runtime backend: CPU inference without torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BackendError, ModelError


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
        try:
            self.session = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        return self.session.run(["frames"], {"wave": wave, "n_frames": n_frames})[0]
