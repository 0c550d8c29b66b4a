"""Which torch device a run uses: inference (backends/torch.py) and training (train/command.py) alike."""

from __future__ import annotations

from ..errors import BackendError


def pick_device(device: str) -> str:
    """'auto' -> a CUDA GPU where torch sees one, else the CPU; a GPU asked for that is not there is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device={device!r} but torch sees no CUDA GPU; use device='cpu'")
    return device
