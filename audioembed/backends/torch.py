"""PyTorch backend: the same weights from model.safetensors, on CPU or GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..errors import BackendError, ModelError


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device={device!r} but torch sees no CUDA GPU; use device='cpu'")
    return device


class TorchBackend:
    name = "torch"

    def __init__(self, path: Path, cfg: ModelConfig, device: str = "auto", num_threads: int | None = None):
        import torch
        from safetensors.torch import load_file

        from ..nn import AudioEncoder

        if num_threads:
            torch.set_num_threads(num_threads)
        self.device = pick_device(device)
        model = AudioEncoder(cfg)
        try:
            state = load_file(str(path))  # safetensors: tensors only, no code execution
            model.load_state_dict(state)
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the weights ({exc})") from exc
        self.model = model.eval().to(self.device)
        self._torch = torch

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            w = torch.from_numpy(wave).to(self.device)
            n = torch.from_numpy(n_frames).to(self.device)
            return self.model(w, n).float().cpu().numpy()
