"""Backends run a model folder's weights: wave (B, N) float32 + n_frames (B,) int64 -> frames (B, T, D).

Both expose the same tiny interface, so the Embedder never cares which one it holds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import ModelConfig
from ..errors import BackendError, install_hint

BACKEND_FILES = {"torch": "model.safetensors", "onnx": "model.onnx"}


class Backend(Protocol):
    name: str
    device: str

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray: ...


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("safetensors") is not None


def choose(backend: str) -> str:
    """'auto' -> torch when it is installed, else ONNX Runtime."""
    if backend == "auto":
        return "torch" if torch_available() else "onnx"
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

    return OnnxBackend(folder / BACKEND_FILES["onnx"], device, num_threads)
