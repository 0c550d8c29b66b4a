"""The rows a learned model must beat: log-mel statistics, and the same architecture untrained.

logmel-stats is per-band mean and std of the model's own log-mel (same numbers from config.json,
same dataset normalisation), computed with mel.LogMel (numpy's FFT). random-init is the model's config with random
weights (fixed seed), exported to a model folder and run through the same Embedder path.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np

from .. import mel, windows
from ..config import ModelConfig
from ..model_folder import CONFIG, ONNX
from .features import ClipFunctionExtractor, digest

LOGMEL_VERSION = 2  # 2: numpy FFT (mel.LogMel) instead of a DFT matmul; bump when logmel_stats changes, so cached vectors are recomputed
CHUNK_FRAMES = 2048  # log-mel frames per matmul: bounds memory for long clips
RANDOM_SEED = 0


class LogMelStats:
    """Per-band mean and std over time of the normalised log-mel: (2 * n_mels,)."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.to_mel = mel.LogMel(cfg)

    def logmel(self, padded: np.ndarray) -> np.ndarray:
        """Centre-padded samples -> (F, n_mels) normalised log-mel, as the model's frontend."""
        return (self.to_mel(padded) - self.cfg.norm_mean) / self.cfg.norm_std

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        n = max(len(wave), windows.min_samples(cfg))  # short clips are zero-padded, as the model does
        x = np.zeros(n, np.float32)
        x[: len(wave)] = wave
        padded = mel.centre_pad(x, cfg)
        frames = mel.n_frames(n, cfg)
        total, total_sq = np.zeros(cfg.n_mels), np.zeros(cfg.n_mels)
        for start in range(0, frames, CHUNK_FRAMES):  # bounded memory for long clips
            stop = min(start + CHUNK_FRAMES, frames)
            m = self.logmel(padded[start * cfg.hop_length : (stop - 1) * cfg.hop_length + cfg.n_fft]).astype(np.float64)
            total += m.sum(axis=0)
            total_sq += (m * m).sum(axis=0)
        mean = total / frames
        std = np.sqrt(np.maximum(total_sq / frames - mean * mean, 0.0))
        return np.concatenate([mean, std]).astype(np.float32)


def logmel_stats(cfg: ModelConfig) -> ClipFunctionExtractor:
    key = digest("logmel-stats", LOGMEL_VERSION, sorted(cfg.numbers().items()))
    return ClipFunctionExtractor("logmel-stats", key, cfg.sample_rate, LogMelStats(cfg), threads=1)


def random_init_folder(cfg: ModelConfig, cache: Path, seed: int = RANDOM_SEED) -> Path:
    """Export the architecture of `cfg` with random weights once; later runs reuse the folder.

    model.onnx only when the onnx package is installed (torch's exporter needs it; the [torch] and [eval]
    extras do not install it): without it the baseline runs on torch. A failed build leaves nothing behind.
    """
    cfg = dataclasses.replace(cfg, stack_scale=1.0)  # a stacked readout's balance was measured on trained weights
    folder = cache / "models" / f"random-init-{digest(sorted(cfg.numbers().items()), seed)[:16]}"
    onnx = importlib.util.find_spec("onnx") is not None
    if (folder / CONFIG).is_file() and (not onnx or (folder / ONNX).is_file()):
        return folder
    import torch

    from ..nn import AudioEncoder
    from ..nn.export import save_model_folder

    random_cfg = dataclasses.replace(cfg, name="random-init", sha256={}, extra={"random_init_seed": seed})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AudioEncoder(random_cfg)
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    try:
        card_text = f"# random-init\n\n{cfg.name}'s architecture with random weights (seed {seed}).\n"
        save_model_folder(model, tmp, card_text=card_text, onnx=onnx)
        shutil.rmtree(folder, ignore_errors=True)  # a build from before onnx was installed
        tmp.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
