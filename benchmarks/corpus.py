"""Generated inputs, written once into a cache folder: a random-weight model, audio for the end-to-end and memory figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATES = (8000, 16000, 22050, 32000, 44100, 48000)  # all valid MP3 rates too
# (extension, soundfile format, subtype, share of the files)
FORMATS = (
    ("wav", "WAV", "PCM_16", 0.40),
    ("flac", "FLAC", "PCM_16", 0.25),
    ("ogg", "OGG", "VORBIS", 0.15),
    ("mp3", "MP3", "MPEG_LAYER_III", 0.20),
)
STEREO_SHARE = 0.3
SECONDS = (0.5, 6.0)  # short files: uniform durations in this range


def random_model(workdir: Path) -> Path:
    """The default architecture with random weights: speed does not depend on the weights."""
    import torch

    from audioembed.config import ModelConfig
    from audioembed.nn import AudioEncoder
    from audioembed.nn.export import save_model_folder

    out = workdir / "model-random-default"
    if not (out / "config.json").exists():
        torch.manual_seed(0)
        save_model_folder(AudioEncoder(ModelConfig(name="random-default")), out)
    return out


def signal(rng: np.random.Generator, n: int, sr: int, channels: int) -> np.ndarray:
    """Tones with vibrato plus coloured noise: enough structure that codecs do real work."""
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 2000)
    x = 0.3 * np.sin(2 * np.pi * f0 * t + 3 * np.sin(2 * np.pi * rng.uniform(1, 8) * t))
    noise = np.cumsum(rng.standard_normal(n)) * 0.002
    x = x + noise - noise.mean() + 0.05 * rng.standard_normal(n)
    out = np.stack([x * g for g in rng.uniform(0.5, 1.0, channels)], axis=1)
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def folder(root: Path, n_files: int, seed: int = 0) -> tuple[Path, dict]:
    """`n_files` short files, mixed rates, formats and channel counts; reused when already complete."""
    out = root / f"corpus-{n_files}"
    marker = out / ".complete"
    rng = np.random.default_rng(seed)
    shares = np.array([f[3] for f in FORMATS])
    summary = {"files": n_files, "formats": {}, "stereo": 0, "seconds": 0.0}
    plan = []
    for i in range(n_files):
        ext, fmt, subtype, _ = FORMATS[rng.choice(len(FORMATS), p=shares / shares.sum())]
        sr = int(rng.choice(RATES))
        channels = 2 if rng.random() < STEREO_SHARE else 1
        seconds = float(rng.uniform(*SECONDS))
        plan.append((out / f"{i // 100:02d}" / f"clip{i:04d}.{ext}", fmt, subtype, sr, channels, seconds))
        summary["formats"][ext] = summary["formats"].get(ext, 0) + 1
        summary["stereo"] += channels == 2
        summary["seconds"] += seconds
    if not marker.exists():
        for path, fmt, subtype, sr, channels, seconds in plan:
            path.parent.mkdir(parents=True, exist_ok=True)
            x = signal(rng, int(seconds * sr), sr, channels)
            sf.write(path, x, sr, format=fmt, subtype=subtype)
        marker.write_text("ok\n")
    summary["seconds"] = round(summary["seconds"], 1)
    return out, summary


def long_file(root: Path, seconds: int, sr: int = 16000) -> Path:
    """A mono 16-bit WAV of `seconds`, written in blocks so that writing it needs little memory."""
    path = root / f"long-{seconds}s.wav"
    if path.exists() and sf.info(str(path)).frames == seconds * sr:
        return path
    rng = np.random.default_rng(seconds)
    tmp = path.with_suffix(".tmp.wav")
    with sf.SoundFile(tmp, "w", sr, 1, "PCM_16", format="WAV") as f:
        for start in range(0, seconds, 60):
            n = min(60, seconds - start) * sr
            f.write(signal(rng, n, sr, 1))
    tmp.rename(path)
    return path
