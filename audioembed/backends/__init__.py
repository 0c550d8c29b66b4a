"""Backends run a model folder's weights: wave (B, N) float32 + n_frames (B,) int64 -> frames (B, T, D).

torch (model.safetensors), ONNX Runtime and OpenVINO (both model.onnx) expose the same tiny interface, so
the Embedder never cares which one it holds.
"""

from __future__ import annotations

import importlib.util
import os
from ctypes.util import find_library
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import ModelConfig
from ..errors import BackendError, install_hint
from ..model_folder import BACKEND_FILES
# NVIDIA's driver (Linux), WSL's GPU bridge, AMD's ROCm: without one of them torch cannot see a GPU.
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/dxg", "/dev/kfd")


class Backend(Protocol):
    name: str
    device: str
    precision: str  # what it computes in: 'f32', or 'bf16' (openvino)
    rows_per_run: int | None  # windows per run() call; None: the whole batch at once

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray: ...


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("safetensors") is not None


def cuda_available() -> bool:
    """Whether torch sees a CUDA (or ROCm) GPU. torch (slow to import, heavy) is imported only where a GPU driver is."""
    if not torch_available():
        return False
    if not any(os.path.exists(p) for p in GPU_DRIVER_FILES) and not (os.name == "nt" and find_library("nvcuda")):
        return False
    import torch

    return torch.cuda.is_available()


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def choose(backend: str, device: str = "auto", precision: str = "auto") -> str:
    """'auto' -> torch on a CUDA GPU, ONNX Runtime on a CPU (faster there than torch: benchmarks/backend_choice.py),
    OpenVINO where bf16 is asked for. auto never picks bfloat16 by itself: with its frontend in float32 (accurate:
    lowest cosine 0.99977 on 1,000 corpus files) OpenVINO's bf16 is only 1.2-1.6x ONNX Runtime's speed here, and
    the whole graph in bf16 (2.3-3x) misses the accuracy bar (docs/cli.md). 'cuda' or 'mps' means torch."""
    if backend == "auto":
        gpu = device not in ("auto", "cpu") or (device == "auto" and cuda_available())
        backend = "torch" if gpu else "openvino" if precision == "bf16" else "onnx"
    if backend not in BACKEND_FILES:
        raise BackendError(f"unknown backend {backend!r}: use 'auto', 'torch', 'onnx' or 'openvino'")
    if backend == "torch" and not torch_available():
        raise BackendError(f"backend='torch' needs PyTorch: {install_hint('torch')}")
    if backend == "openvino" and not openvino_available():
        raise BackendError(f"backend='openvino' needs OpenVINO: {install_hint('openvino')}")
    return backend


def choose_precision(backend: str, precision: str = "auto") -> str:
    """'f32' or 'bf16' for a chosen backend: bf16 only when asked for, on OpenVINO and a CPU that has it natively."""
    if precision == "auto":
        return "f32"
    if backend == "openvino":
        from . import openvino

        openvino.check_precision(precision)
        return precision
    if precision not in ("auto", "f32"):
        raise BackendError(
            f"backend {backend!r} computes in float32 only (precision={precision!r}); 'bf16' needs "
            "backend='openvino' on a CPU with native bfloat16; use precision='f32' or 'auto'"
        )
    return "f32"


def load(name: str, folder: Path, cfg: ModelConfig, device: str, num_threads: int | None, precision: str = "f32") -> Backend:
    if name == "torch":
        from .torch import TorchBackend

        return TorchBackend(folder / BACKEND_FILES["torch"], cfg, device, num_threads)
    if name == "openvino":
        from .openvino import OpenVinoBackend

        return OpenVinoBackend(folder / BACKEND_FILES["openvino"], cfg, device, num_threads, precision)
    from .onnx import OnnxBackend

    return OnnxBackend(folder / BACKEND_FILES["onnx"], cfg, device, num_threads)
