"""The HEAR 2021 API (https://hearbenchmark.com), so hear-eval-kit can evaluate any audioembed model.

    hear-validator audioembed.hear -m models/my-model     # a model folder or hub repo id; "" the default model
    python -m audioembed.hear hearvalidator.validate audioembed.hear -m models/my-model   # without TensorFlow

`audioembed.hear`, the name HEAR tools are given (and that names their output folders), re-exports this module.

Audio comes in as a (n_sounds, n_samples) torch tensor at `model.sample_rate`: float in [-1, 1], or integer
PCM, scaled as `Embedder.embed` scales it (int16 / 32768). Embeddings go out as float32 torch tensors on the
input's device, timestamps in milliseconds (frame centres).
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import torch
except ImportError as exc:  # HEAR's interface is torch tensors
    from ..errors import install_hint

    raise ImportError(f"audioembed.hear needs PyTorch: {install_hint('torch')}") from exc

from ..embedder import Embedder
from ..errors import AudioError


class HearModel(torch.nn.Module):
    """An Embedder behind the torch.nn.Module face HEAR asks for (it has no trainable parameters here)."""

    def __init__(self, embedder: Embedder):
        super().__init__()
        self.embedder = embedder
        self.sample_rate = embedder.sample_rate
        self.scene_embedding_size = embedder.dim
        self.timestamp_embedding_size = embedder.dim


def load_model(model_file_path: str = "", **embedder_options: Any) -> HearModel:
    """model_file_path: a model folder or hub repo id; "" is the default model."""
    return HearModel(Embedder(model_file_path or None, **embedder_options))


def _batch(audio: torch.Tensor, model: HearModel) -> list[Any]:
    """The sounds as Embedder takes them, dtype kept: integer PCM is scaled to [-1, 1] as embed() scales it."""
    if audio.ndim != 2:
        raise ValueError(f"HEAR audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
    if audio.dtype == torch.bool or audio.is_complex():
        raise AudioError(f"HEAR audio of dtype {audio.dtype} is not audio samples; pass float in [-1, 1] or integer PCM")
    audio = audio.detach().cpu()
    return list(audio.float() if audio.dtype == torch.bfloat16 else audio)  # numpy has no bfloat16


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """(n_sounds, scene_embedding_size): the clip embedding of each sound."""
    vectors = model.embedder.embed(_batch(audio, model), sr=model.sample_rate)
    return torch.from_numpy(vectors.reshape(len(audio), model.scene_embedding_size)).to(audio.device)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_sounds, n_frames, timestamp_embedding_size) frame embeddings and (n_sounds, n_frames) centres in ms."""
    frames = model.embedder.embed_frames(_batch(audio, model), sr=model.sample_rate)
    n = len(frames[0].embeddings) if frames else 0
    embeddings = np.stack([f.embeddings for f in frames]) if frames else np.zeros((0, 0, model.timestamp_embedding_size), np.float32)
    timestamps = np.tile(model.embedder.timestamps(n), (len(frames), 1)).astype(np.float32)
    return torch.from_numpy(embeddings).to(audio.device), torch.from_numpy(timestamps).to(audio.device)


def _stand_in_tensorflow() -> None:
    """hearvalidator and heareval import tensorflow only to tell TensorFlow models apart (and heareval's runner to
    compare GPUs): without TensorFlow installed, a stand-in module lets them check and run a torch model."""
    import importlib.util
    import sys
    import types

    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        return
    tf = types.ModuleType("tensorflow", "audioembed.hear's stand-in: no TensorFlow model can be loaded")
    tf.Module = type("Module", (), {})  # nothing is one: every model is judged as torch
    tf.test = types.SimpleNamespace(is_gpu_available=lambda *args, **kwargs: torch.cuda.is_available())
    sys.modules["tensorflow"] = tf


def _main(argv: list[str]) -> int:
    """`python -m audioembed.hear MODULE [ARGS...]`: run `python -m MODULE ARGS` (hearvalidator.validate,
    heareval.embeddings.runner) with a stand-in for TensorFlow, so that neither needs it installed."""
    import runpy
    import sys

    if not argv or argv[0].startswith("-"):
        print("usage: python -m audioembed.hear MODULE [ARGS...]\n"
              "  e.g. python -m audioembed.hear hearvalidator.validate audioembed.hear -m models/audioembed-base -d cpu\n"
              "       python -m audioembed.hear heareval.embeddings.runner audioembed.hear --model MODEL --tasks-dir TASKS",
              file=sys.stderr)
        return 2
    _stand_in_tensorflow()
    sys.argv = list(argv)
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
