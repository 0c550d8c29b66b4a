"""Decode a folder of audio once into a float16 log-mel memmap, then draw training crops from it.

Training on a CPU spends its time in the network only if data costs nothing: every file is
decoded, resampled and turned into log-mel once; later runs (and every epoch) read the cache.
Long files are cut into segments of at most SEGMENT_SECONDS, so memory stays bounded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .. import audio, mel
from ..config import ModelConfig
from ..errors import AudioEmbedError
from ..files import find_audio
from ..outputs.lock import OutLock

SEGMENT_SECONDS = 60.0
MIN_FRAMES = 8  # clips shorter than 80 ms carry nothing to learn from
CACHE_VERSION = 2  # 2: clip groups (top-level folder) for balanced sampling


def _segments(path: Path, cfg: ModelConfig) -> Iterator[np.ndarray]:
    """A file's samples in pieces of at most SEGMENT_SECONDS (bounded memory for long files)."""
    limit = int(SEGMENT_SECONDS * cfg.sample_rate)
    parts, size = [], 0
    for block in audio.stream(path, target_sr=cfg.sample_rate):
        parts.append(block)
        size += len(block)
        while size >= limit:
            joined = np.concatenate(parts)
            yield joined[:limit]
            parts, size = [joined[limit:]], size - limit
    if size:
        yield np.concatenate(parts)


def cache_key(files: list[Path], root: Path, cfg: ModelConfig) -> str:
    """Changes when any file, its size or mtime, or a frontend number changes."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    h.update(json.dumps(cfg.frontend(), sort_keys=True).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root) if p != root else p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def is_cache_folder(folder: Path) -> bool:
    """A finished cache (meta.json is written last), e.g. one copied to the machine that trains."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in ("meta.json", "frames.f16", "offsets.npy", "groups.npy"))


class MelCache:
    """All clips' log-mel frames in one (total_frames, n_mels) float16 memmap plus clip offsets."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        meta = json.loads((self.folder / "meta.json").read_text())
        self.meta = meta
        self.n_mels = meta["n_mels"]
        self.mean, self.std = meta["mean"], meta["std"]
        self.offsets = np.load(self.folder / "offsets.npy")
        total = int(self.offsets[-1])
        self.frames = np.memmap(self.folder / "frames.f16", dtype=np.float16, mode="r", shape=(total, self.n_mels))
        self.lengths = np.diff(self.offsets)
        self.pad_value = float(np.log(meta["log_eps"]))
        self.group_names = meta["groups"]
        self.groups = np.load(self.folder / "groups.npy")  # per clip: index into group_names
        self.group_clips = [np.flatnonzero(self.groups == g) for g in range(len(self.group_names))]
        self.group_clips = [c for c in self.group_clips if len(c)]

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def hours(self) -> float:
        return float(self.meta["seconds"]) / 3600

    def group_hours(self) -> dict[str, float]:
        """Hours of audio under each top-level folder of the data directory."""
        per_frame = self.meta["seconds"] / max(self.meta["frames"], 1)
        return {n: float(self.lengths[self.groups == g].sum()) * per_frame / 3600 for g, n in enumerate(self.group_names)}

    def draw_clips(self, batch: int, gen: torch.Generator, balanced: bool = False) -> np.ndarray:
        """Clip indices: uniform over clips, or uniform over top-level folders then clips within one."""
        if not balanced or len(self.group_clips) < 2:
            return torch.randint(len(self), (batch,), generator=gen).numpy()
        group = torch.randint(len(self.group_clips), (batch,), generator=gen).numpy()
        u = torch.rand(batch, generator=gen, dtype=torch.float64).numpy()
        return np.array([self.group_clips[g][int(r * len(self.group_clips[g]))] for g, r in zip(group, u)])

    def sample(self, batch: int, n_frames: int, gen: torch.Generator, clips=None, balanced: bool = False) -> torch.Tensor:
        """(batch, n_mels, n_frames) float32 crops, standardised by the dataset statistics.

        Clips are drawn by `draw_clips` (or given as `clips`), crops at a uniform offset; shorter clips sit at a
        random offset in a crop filled with the log of silence.
        """
        idx = self.draw_clips(batch, gen, balanced) if clips is None else np.asarray(clips)
        u = torch.rand(batch, generator=gen, dtype=torch.float64).numpy()
        out = np.full((batch, n_frames, self.n_mels), self.pad_value, dtype=np.float32)
        for b, (i, r) in enumerate(zip(idx, u)):
            length, start = int(self.lengths[i]), int(self.offsets[i])
            if length >= n_frames:
                s = start + int(r * (length - n_frames + 1))
                out[b] = self.frames[s : s + n_frames]
            else:
                s = int(r * (n_frames - length + 1))
                out[b, s : s + length] = self.frames[start : start + length]
        x = torch.from_numpy(out).transpose(1, 2)
        return ((x - self.mean) / self.std).contiguous()


def build_cache(
    data_dir: Path, cache_root: Path, cfg: ModelConfig, workers: int = 2, log: Callable[[str], None] = print
) -> MelCache:
    """Decode every file under data_dir once; reuse the cache while the files are unchanged."""
    data_dir = Path(data_dir)
    files = sorted(find_audio(data_dir))
    if not files:
        raise AudioEmbedError(f"{data_dir}: no audio files ({', '.join(sorted(audio.AUDIO_EXTENSIONS))})")
    folder = Path(cache_root) / cache_key(files, data_dir, cfg)
    if (folder / "meta.json").exists():
        return MelCache(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # One builder per cache: two runs started on a new corpus at once (both arms of a grid) would both write
    # frames.f16.tmp, and the slower one's rename would fail. The second waits for the first, then reuses its cache.
    lock = OutLock(folder)
    lock.acquire(on_wait=lambda: log(f"cache: {folder} is being built by another process; waiting for it"))
    try:
        if (folder / "meta.json").exists():
            return MelCache(folder)
        return _build(folder, data_dir, files, cfg, workers, log)
    finally:
        lock.release()


def _build(folder: Path, data_dir: Path, files: list[Path], cfg: ModelConfig, workers: int,
           log: Callable[[str], None]) -> MelCache:
    to_mel = mel.LogMel(cfg).of_wave

    def one(path: Path) -> tuple[Path, list[np.ndarray] | str]:
        try:
            mels = [to_mel(seg) for seg in _segments(path, cfg)]
            return path, [m.astype(np.float16) for m in mels if len(m) >= MIN_FRAMES]
        except AudioEmbedError as exc:
            return path, str(exc)

    def group_of(path: Path) -> str:
        rel = path.relative_to(data_dir) if path != data_dir else Path(path.name)
        return rel.parts[0] if len(rel.parts) > 1 else "."

    names = sorted({group_of(p) for p in files})
    group_index = {name: i for i, name in enumerate(names)}
    offsets, failures, clip_groups = [0], [], []
    total, s1, s2 = 0, 0.0, 0.0
    tmp = folder / "frames.f16.tmp"
    with open(tmp, "wb") as f, ThreadPoolExecutor(max(1, workers)) as pool:
        for n, (path, result) in enumerate(pool.map(one, files), 1):
            if isinstance(result, str):
                failures.append(result)
                continue
            for m in result:
                f.write(m.tobytes())
                total += len(m)
                offsets.append(total)
                clip_groups.append(group_index[group_of(path)])
                m32 = m.astype(np.float64)
                s1 += m32.sum()
                s2 += np.square(m32).sum()
            if n % 500 == 0 or n == len(files):
                log(f"cache: {n}/{len(files)} files, {total * cfg.hop_length / cfg.sample_rate / 3600:.2f} h")
    if total == 0:
        raise AudioEmbedError(f"{data_dir}: no usable audio ({len(failures)} files failed to decode)")
    count = total * cfg.n_mels
    mean = s1 / count
    std = math.sqrt(max(s2 / count - mean * mean, 1e-12))
    meta = dict(version=CACHE_VERSION, data_dir=str(data_dir), files=len(files) - len(failures), failed=failures,
                clips=len(offsets) - 1, frames=total, seconds=total * cfg.hop_length / cfg.sample_rate,
                n_mels=cfg.n_mels, log_eps=cfg.log_eps, mean=mean, std=std, groups=names)
    np.save(folder / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    np.save(folder / "groups.npy", np.asarray(clip_groups, dtype=np.int32))
    os.replace(tmp, folder / "frames.f16")
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: marks the cache complete
    for message in failures:
        log(f"cache: skipped {message}")
    return MelCache(folder)
