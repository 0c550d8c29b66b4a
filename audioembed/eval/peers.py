"""Pretrained peers that load offline from their wheels: the bar a model should clear on their tasks.

resemblyzer: the GE2E speaker encoder's utterance embedding (256-d), with its own volume
normalisation and silence trimming. crepe-tiny: torchcrepe's pitch model, the output of its fifth
max-pool every 50 ms, averaged over time. Neither is a dependency: a peer that is not installed is
skipped with a note.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

from .features import ClipFunctionExtractor, digest

PEERS = ("resemblyzer", "crepe-tiny")
CREPE_HOP = 800  # samples at 16 kHz: 50 ms; the 10 ms default costs 5x more for the same average
MIN_TRIMMED = 1600  # samples: when silence trimming leaves less, resemblyzer gets the untrimmed clip


def missing(name: str) -> str | None:
    """Why a peer cannot run here, or None when it can."""
    package = {"resemblyzer": "resemblyzer", "crepe-tiny": "torchcrepe"}[name]
    needs = [package, "torch"] + (["webrtcvad", "librosa"] if package == "resemblyzer" else [])
    absent = [m for m in needs if importlib.util.find_spec(m) is None]
    return f"not installed ({', '.join(absent)}): pip install {package}" if absent else None


def load(name: str) -> ClipFunctionExtractor:
    return {"resemblyzer": _resemblyzer, "crepe-tiny": _crepe_tiny}[name]()


def _file_digest(path: Path) -> str:
    from ..model_folder import sha256

    return sha256(path)


def _resemblyzer() -> ClipFunctionExtractor:
    import resemblyzer
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume, trim_long_silences
    from resemblyzer.hparams import audio_norm_target_dBFS, sampling_rate

    encoder = VoiceEncoder("cpu", verbose=False)
    weights = Path(resemblyzer.__file__).parent / "pretrained.pt"

    def embed(wave: np.ndarray) -> np.ndarray:
        wav = normalize_volume(wave, audio_norm_target_dBFS, increase_only=True)
        trimmed = trim_long_silences(wav)
        return encoder.embed_utterance(trimmed if len(trimmed) >= MIN_TRIMMED else wav)

    key = digest("resemblyzer", _version("resemblyzer"), _file_digest(weights), MIN_TRIMMED)
    return ClipFunctionExtractor("resemblyzer", key, sampling_rate, embed)


def _import_torchcrepe():
    """torchcrepe imports torchaudio only for torchcrepe.load.audio (reading files), which is never
    called here (audioembed decodes); without torchaudio, a placeholder stands in during the import."""
    if "torchcrepe" in sys.modules or importlib.util.find_spec("torchaudio") is not None:
        import torchcrepe

        return torchcrepe

    def unavailable(*args, **kwargs):
        raise ImportError("torchaudio is not installed; audioembed decodes audio itself")

    placeholder = types.ModuleType("torchaudio")
    placeholder.load = unavailable  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = placeholder
    try:
        import torchcrepe
    finally:
        del sys.modules["torchaudio"]
    return torchcrepe


def _crepe_tiny() -> ClipFunctionExtractor:
    import torch

    torchcrepe = _import_torchcrepe()
    weights = Path(torchcrepe.__file__).parent / "assets" / "tiny.pth"

    def embed(wave: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(wave, np.float32))[None]
            frames = torchcrepe.embed(x, 16000, hop_length=CREPE_HOP, model="tiny", batch_size=512, device="cpu")
        return frames.reshape(frames.shape[1], -1).mean(dim=0).numpy()

    key = digest("crepe-tiny", _version("torchcrepe"), _file_digest(weights), CREPE_HOP)
    return ClipFunctionExtractor("crepe-tiny", key, 16000, embed)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
