"""Export a torch encoder's weights into a model folder (model.safetensors, model.onnx); model_folder.write finishes it."""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch

from .. import model_folder
from ..config import ModelConfig
from .encoder import AudioEncoder


def export_onnx(model: AudioEncoder, path: Path, opset: int = 17) -> None:
    """Dynamic batch and length; inputs wave (B, N) float32 and n_frames (B,) int64; output frames."""
    cfg = model.cfg
    n = cfg.sample_rate * 2
    wave = torch.zeros(2, n + cfg.n_fft)
    n_frames = torch.tensor([n // cfg.hop_length + 1, n // cfg.hop_length // 2])
    model = model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        torch.onnx.export(
            model,
            (wave, n_frames),
            buf,
            input_names=["wave", "n_frames"],
            output_names=["frames"],
            dynamic_axes={"wave": {0: "batch", 1: "samples"}, "n_frames": {0: "batch"}, "frames": {0: "batch", 1: "time"}},
            opset_version=opset,
            dynamo=False,
        )
    Path(path).write_bytes(buf.getvalue())


def save_model_folder(
    model: AudioEncoder, out: str | Path, card_text: str | None = None, history: list[dict] | None = None, onnx: bool = True
) -> ModelConfig:
    """Export weights for both backends, record their sha256 in config.json, write the model card.

    card_text: the card's Markdown; by default card.body() from the config and the training history.
    onnx=False: safetensors only (torch's ONNX exporter needs the onnx package, which [torch] does not install).
    The model passed is left as it was (device, train mode): the export works on a CPU copy, so a training
    run can snapshot itself and go on.
    """
    from safetensors.torch import save

    from ..files import atomic_write_bytes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # as bytes through our own writer: a file with the umask's mode like the others (safetensors' save_file
    # creates 0600), written whole or not at all
    atomic_write_bytes(out / model_folder.SAFETENSORS, save(state))
    if onnx:
        export_onnx(model, out / model_folder.ONNX)
    return model_folder.write(out, model.cfg, model_folder.WEIGHT_FILES if onnx else [model_folder.SAFETENSORS], card_text, history)
