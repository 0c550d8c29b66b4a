"""model.safetensors into a torch encoder, with a message naming the mismatch (inference and --init-from alike)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError


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
