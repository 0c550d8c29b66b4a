"""Backends run a model folder's weights: wave (B, N) float32 + n_frames (B,) int64 -> frames (B, T, D).

Both expose the same tiny interface, so the Embedder never cares which one it holds.
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


def choose(backend: str, device: str = "auto") -> str:
    """'auto' -> the fastest where it runs: torch on a CUDA GPU, ONNX Runtime on a CPU (faster there:
    benchmarks/backend_choice.py). A device other than auto or cpu ('cuda', 'mps') means torch."""
    if backend == "auto":
        gpu = device not in ("auto", "cpu") or (device == "auto" and cuda_available())
        backend = "torch" if gpu else "onnx"
    if backend not in BACKEND_FILES:
        raise BackendError(f"unknown backend {backend!r}: use 'auto', 'torch' or 'onnx'")
    if backend == "torch" and not torch_available():
        raise BackendError(f"backend='torch' needs PyTorch: {install_hint('torch')}")
    return backend


def load(name: str, folder: Path, cfg: ModelConfig, device: str, num_threads: int | None) -> Backend:
    if name == "torch":
        from .torch import TorchBackend

        return TorchBackend(folder / BACKEND_FILES["torch"], cfg, device, num_threads)
    from .onnx import OnnxBackend

    return OnnxBackend(folder / BACKEND_FILES["onnx"], cfg, device, num_threads)
