"""PyTorch backend: the same weights from model.safetensors, on CPU or GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..nn.device import pick_device
from ..nn.weights import load_weights


class TorchBackend:
    precision = "f32"
    name = "torch"
    rows_per_run = None  # a GPU is fastest on whole batches

    def __init__(self, path: Path, cfg: ModelConfig, device: str = "auto", num_threads: int | None = None):
        import torch

        from ..nn import AudioEncoder

        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = pick_device(device)
        model = AudioEncoder(cfg)
        load_weights(model, path)
        self.model = model.eval().to(self.device)
        self._torch = torch

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            w = torch.from_numpy(wave).to(self.device)
            n = torch.from_numpy(n_frames).to(self.device)
            return self.model(w, n).float().cpu().numpy()
