"""Host-to-GPU copies that do not make the host wait.

A plain `.to("cuda")` of a tensor in ordinary (pageable) memory returns only once the GPU has the
data, i.e. after everything queued before it; the training step made about 28 such copies (crops,
mixup draws, resize grids, the negatives' index rows), and on an H200 the host spent 46 % of a
step waiting in them. Through pinned memory the copy is queued like a kernel and the host goes on.
"""

from __future__ import annotations

import torch


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """`t.to(device)`; on CUDA from pinned memory, without waiting (the values are the same)."""
    if torch.device(device).type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)
