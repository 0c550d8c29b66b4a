"""Pack a sample of a log-mel cache into one small file, and unpack it into a cache folder elsewhere.

A GPU machine that can reach nothing gets its training data with the code, under a size limit
(64 MiB on the machines lent here). The 76 h cache is 3.3 GB of float16; this takes windows of
clips, drawn evenly across the top-level folders (music, speech, sfx), quantizes the log-mel to
7 bits (a step of 0.22 in natural-log units, 4 % of the data's std; its noise, 1 %, is far
below the augmentations'), codes each frame as its
difference from the one before, and compresses with lzma: about 26 bytes per 10 ms frame, 0.15 MiB per minute of audio.
`audioembed pretrain PACKED_FOLDER` then trains on the unpacked folder as on any cache.

    python scripts/data/pack_melcache.py pack CACHE_FOLDER mel.pack --hours 5.5
    python scripts/data/pack_melcache.py unpack mel.pack CACHE_FOLDER      # needs numpy only

More data than one transfer holds: `--parts N --part K` packs from the K-th of N disjoint sets of clips
(clip index mod N), so packs sent in several calls to one machine never repeat a clip, and
`unpack a.pack b.pack ... CACHE_FOLDER` joins them into one cache there.

The standardisation statistics (mean, std) stay those of the whole cache, so a model trained on
the sample normalises its input exactly as one trained on everything.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
from pathlib import Path

import numpy as np

HI = 12.0  # log-mel above this is clipped (a tenth of the 76 h corpus, read through, peaks at 11.9)
LEVELS = 128


def pack(cache: Path, out: Path, hours: float, window: int, seed: int, part: int = 0, parts: int = 1) -> None:
    meta = json.loads((cache / "meta.json").read_text())
    offsets = np.load(cache / "offsets.npy")
    groups = np.load(cache / "groups.npy")
    n_mels = meta["n_mels"]
    frames = np.memmap(cache / "frames.f16", dtype=np.float16, mode="r").reshape(-1, n_mels)
    lengths = np.diff(offsets)
    fps = meta["frames"] / meta["seconds"]
    rng = np.random.default_rng(seed)
    names = meta["groups"]
    budget = int(hours * 3600 * fps / len(names))  # frames per top-level folder: drawn equally
    lo = float(np.log(meta["log_eps"]))
    windows, new_offsets, new_groups, sources, total = [], [0], [], [], 0
    if not 0 <= part < parts:
        raise ValueError(f"part {part} of {parts}: must be 0..{parts - 1}")
    mine = np.arange(len(groups)) % parts == part  # disjoint sets of clips (all of them when parts == 1)
    for g in range(len(names)):
        taken = 0
        for clip in rng.permutation(np.flatnonzero((groups == g) & mine)):
            if taken >= budget:
                break
            n = int(min(lengths[clip], window, budget - taken))
            if n < 8:
                continue
            start = int(offsets[clip]) + int(rng.integers(0, lengths[clip] - n + 1))
            x = np.asarray(frames[start : start + n], dtype=np.float32)
            windows.append(np.clip(np.round((x - lo) / (HI - lo) * (LEVELS - 1)), 0, LEVELS - 1).astype(np.uint8))
            taken += n
            total += n
            new_offsets.append(total)
            new_groups.append(g)
            sources.append((int(clip), start - int(offsets[clip])))  # where each window came from
    q = np.concatenate(windows)
    delta = np.diff(q, axis=0, prepend=np.zeros((1, n_mels), np.uint8))  # uint8 arithmetic wraps: cumsum undoes it
    sub = dict(meta, files=len(new_groups), clips=len(new_groups), frames=int(total), seconds=total / fps, failed=[],
               data_dir=Path(meta["data_dir"]).name,
               sample_of={"clips": meta["clips"], "hours": round(meta["seconds"] / 3600, 3), "window_frames": window,
                          "seed": seed, "part": part, "parts": parts,
                          "quantized": {"lo": lo, "hi": HI, "levels": LEVELS}})
    buf = io.BytesIO()
    np.savez(buf, delta=delta, offsets=np.asarray(new_offsets, np.int64), groups=np.asarray(new_groups, np.int32),
             sources=np.asarray(sources, np.int64).reshape(-1, 2),
             meta=np.frombuffer(json.dumps(sub).encode(), np.uint8))
    out.write_bytes(lzma.compress(buf.getvalue(), preset=6))
    hours_by = {names[g]: round(float(sum(np.diff(new_offsets)[np.asarray(new_groups) == g])) / fps / 3600, 3)
                for g in range(len(names))}
    print(f"{out}: {len(new_groups)} windows, {total / fps / 3600:.2f} h {hours_by}, {out.stat().st_size / 2**20:.1f} MiB")


def unpack(packed: Path | list[Path], folder: Path) -> None:
    """One pack, or several of one cache (e.g. its --parts), into one cache folder."""
    packs = [packed] if isinstance(packed, Path) else list(packed)
    frames, offsets, groups, sources, metas = [], [np.zeros(1, np.int64)], [], [], []
    for path in packs:
        arrays = np.load(io.BytesIO(lzma.decompress(path.read_bytes())))
        meta = json.loads(arrays["meta"].tobytes())
        if metas and any(meta[k] != metas[0][k] for k in ("mean", "std", "n_mels", "groups", "log_eps")):
            raise ValueError(f"{path}: packed from another cache than {packs[0]} (statistics or folders differ)")
        quant = meta["sample_of"]["quantized"]
        q = np.cumsum(arrays["delta"], axis=0, dtype=np.uint8)
        frames.append((q.astype(np.float32) * ((quant["hi"] - quant["lo"]) / (quant["levels"] - 1)) + quant["lo"]).astype(np.float16))
        offsets.append(arrays["offsets"][1:] + offsets[-1][-1])
        groups.append(arrays["groups"])
        sources.append(arrays["sources"])
        metas.append(meta)
    meta = dict(metas[0])
    for key in ("files", "clips", "frames", "seconds"):
        meta[key] = sum(m[key] for m in metas)
    if len(metas) > 1:
        meta["sample_of"] = dict(metas[0]["sample_of"], packs=[m["sample_of"] for m in metas])
    folder.mkdir(parents=True, exist_ok=True)
    np.concatenate(frames).tofile(folder / "frames.f16")
    np.save(folder / "offsets.npy", np.concatenate(offsets))
    np.save(folder / "groups.npy", np.concatenate(groups))
    np.save(folder / "sources.npy", np.concatenate(sources))  # (clip, first frame) in the packed cache
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))  # last: marks the folder complete
    print(f"{folder}: {meta['clips']} clips, {meta['seconds'] / 3600:.2f} h from {len(packs)} pack(s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("cache", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--hours", type=float, default=5.5)
    p.add_argument("--window", type=int, default=256, help="at most this many frames from one clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parts", type=int, default=1, help="split the clips into this many disjoint sets (index mod N)")
    p.add_argument("--part", type=int, default=0, help="pack from this one of them (0..N-1)")
    u = sub.add_parser("unpack")
    u.add_argument("paths", type=Path, nargs="+", metavar="PACK... FOLDER", help="one or more packs, then the folder")
    a = ap.parse_args()
    if a.cmd == "pack":
        pack(a.cache, a.out, a.hours, a.window, a.seed, a.part, a.parts)
    else:
        if len(a.paths) < 2:
            ap.error("unpack: give at least one pack and the folder")
        unpack(a.paths[:-1], a.paths[-1])


if __name__ == "__main__":
    main()
