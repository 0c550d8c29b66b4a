"""The arithmetic of a run: bfloat16 autocast where the device has it in hardware, float32 elsewhere."""

from __future__ import annotations

import torch


def native_bfloat16(device: str) -> bool:
    """Whether the device runs bfloat16 arithmetic in hardware: a CUDA GPU that supports it (Ampere on), or a
    CPU with AVX-512 BF16 or AMX. Elsewhere it is emulated: on an AVX2-only CPU a training step took 7x as long
    as in float32 (docs/training.md)."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return False
        try:  # newer torch counts emulation as support unless told not to
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            return torch.cuda.is_bf16_supported()
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # older torch: the narrower checks
        return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(requested: str, device: str) -> tuple[str, str | None]:
    """The precision a run uses, and a warning when an explicit bfloat16 will be emulated (slow)."""
    if requested == "auto":
        return ("bfloat16" if native_bfloat16(device) else "float32"), None
    if requested == "bfloat16" and not native_bfloat16(device):
        return requested, (f"warning: precision bfloat16 on {device}, which has no bfloat16 arithmetic (no AVX-512 BF16 "
                           "or AMX): it is emulated, a step about 7x slower than in float32; precision auto (the default) picks float32 here")
    return requested, None
