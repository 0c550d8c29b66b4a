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


def load_weights(model, path: Path, against: str = "config.json") -> None:
    """Load model.safetensors into an AudioEncoder, naming the file and the first mismatching tensors when the
    weights were made for another architecture (`against`: what the model was built from, for the message)."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))  # safetensors: tensors only, no code execution
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the weights ({exc})") from exc
    cfg = model.cfg
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        diff = sorted(f"{k}: {found.get(k, 'missing')} ({against}: {expected.get(k, 'none')})"
                      for k in expected.keys() | found.keys() if found.get(k) != expected.get(k))
        raise ModelError(
            f"{path}: the weights do not match {against} (channels={cfg.channels}, n_blocks={cfg.n_blocks}, "
            f"n_mels={cfg.n_mels}, dim={cfg.dim}): {'; '.join(diff[:3])}{' ...' if len(diff) > 3 else ''}; use "
            + ("the config.json that was exported with these weights" if against == "config.json" else
               "the same architecture (--dim; channels and bands are the defaults')")
        )
    model.load_state_dict(state)


class TorchBackend:
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
