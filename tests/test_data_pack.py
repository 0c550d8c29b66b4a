"""pack_melcache.py: a sample of a cache packs small and unpacks into a cache the trainer reads."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "data"))
import pack_melcache as pm  # noqa: E402


def _fake_cache(folder, lengths, groups):
    rng = np.random.default_rng(1)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    t = np.arange(offsets[-1])[:, None]
    frames = (4 * np.sin(t / 7.0 + np.arange(64) / 5.0) + rng.normal(0, 1, (offsets[-1], 64)) - 2).astype(np.float16)
    folder.mkdir()
    frames.tofile(folder / "frames.f16")
    np.save(folder / "offsets.npy", offsets.astype(np.int64))
    np.save(folder / "groups.npy", np.asarray(groups, np.int32))
    meta = dict(version=2, data_dir="/somewhere/audio", files=len(lengths), failed=[], clips=len(lengths),
                frames=int(offsets[-1]), seconds=offsets[-1] / 100, n_mels=64, log_eps=1.1920928955078125e-07,
                mean=-2.0, std=3.0, groups=["music", "speech"])
    (folder / "meta.json").write_text(json.dumps(meta))
    return frames, offsets


def test_pack_round_trip_keeps_values_within_the_quantization_step_and_draws_folders_equally(tmp_path):
    torch = pytest.importorskip("torch")
    from audioembed.train.data import MelCache, is_cache_folder

    lengths = [900, 50, 400, 1200, 300, 30, 700, 5]  # a 5-frame clip is too short to keep
    frames, offsets = _fake_cache(tmp_path / "full", lengths, [0, 0, 0, 0, 1, 1, 1, 1])
    pm.pack(tmp_path / "full", tmp_path / "p.pack", hours=1200 / 360000, window=256, seed=3)  # 600 frames a folder
    assert (tmp_path / "p.pack").stat().st_size < frames.nbytes / 3
    pm.unpack(tmp_path / "p.pack", tmp_path / "sub")
    assert is_cache_folder(tmp_path / "sub")
    sub = MelCache(tmp_path / "sub")
    assert (sub.mean, sub.std) == (-2.0, 3.0)  # the whole cache's statistics, not the sample's
    assert sub.meta["data_dir"] == "audio" and sub.meta["sample_of"]["clips"] == 8
    hours = sub.group_hours()
    assert hours["music"] * 360000 == pytest.approx(600, abs=8)
    assert hours["speech"] * 360000 == pytest.approx(256 + 30 + 256)  # every speech clip, a window of each
    step = (pm.HI - np.log(1.1920928955078125e-07)) / (pm.LEVELS - 1)
    sources = np.load(tmp_path / "sub" / "sources.npy")
    assert len(sources) == len(sub) and 7 not in sources[:, 0]
    for i, (clip, start) in enumerate(sources):
        n = sub.lengths[i]
        assert n <= 256 and start + n <= lengths[clip]
        original = frames[offsets[clip] + start : offsets[clip] + start + n].astype(np.float32)
        got = sub.frames[sub.offsets[i] : sub.offsets[i + 1]].astype(np.float32)
        assert np.abs(got - original).max() <= step / 2 + 0.02  # + float16 rounding
    crops = sub.sample(4, 96, torch.Generator().manual_seed(0), balanced=True)
    assert crops.shape == (4, 64, 96) and torch.isfinite(crops).all()


def test_parts_pack_disjoint_clips_and_unpack_joins_them_into_one_cache(tmp_path):
    """--parts: packs for several transfers to one machine never repeat a clip; unpack joins them."""
    pytest.importorskip("torch")
    from audioembed.train.data import MelCache

    lengths = [300, 200, 250, 400, 120, 90, 310, 220, 180, 260]
    frames, offsets = _fake_cache(tmp_path / "full", lengths, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    for k in range(3):
        pm.pack(tmp_path / "full", tmp_path / f"p{k}.pack", hours=1.0, window=128, seed=5, part=k, parts=3)
    pm.unpack([tmp_path / f"p{k}.pack" for k in range(3)], tmp_path / "joined")
    per_part = []
    for k in range(3):
        pm.unpack(tmp_path / f"p{k}.pack", tmp_path / f"one{k}")
        per_part.append(set(np.load(tmp_path / f"one{k}" / "sources.npy")[:, 0].tolist()))
        assert all(c % 3 == k for c in per_part[-1])
    assert set.union(*per_part) == set(range(10)) and sum(map(len, per_part)) == 10  # every clip, once
    joined = MelCache(tmp_path / "joined")
    assert len(joined) == 10 and joined.meta["clips"] == 10 and len(joined.meta["sample_of"]["packs"]) == 3
    assert sorted(np.load(tmp_path / "joined" / "sources.npy")[:, 0].tolist()) == list(range(10))
    sources = np.load(tmp_path / "joined" / "sources.npy")
    for i, (clip, start) in enumerate(sources):  # each window still where its clip's frames were
        n = joined.lengths[i]
        original = frames[offsets[clip] + start : offsets[clip] + start + n].astype(np.float32)
        got = joined.frames[joined.offsets[i] : joined.offsets[i + 1]].astype(np.float32)
        assert np.abs(got - original).max() < 0.15
    # one part is the old single pack's behaviour: parts=1 packs every clip
    pm.pack(tmp_path / "full", tmp_path / "all.pack", hours=1.0, window=128, seed=5)
    pm.unpack(tmp_path / "all.pack", tmp_path / "all")
    assert MelCache(tmp_path / "all").meta["clips"] == 10
    with pytest.raises(ValueError, match="part 3 of 3"):
        pm.pack(tmp_path / "full", tmp_path / "x.pack", hours=1.0, window=128, seed=5, part=3, parts=3)
    other = tmp_path / "other"
    _fake_cache(other, lengths, [0] * 10)
    meta = json.loads((other / "meta.json").read_text())
    (other / "meta.json").write_text(json.dumps(dict(meta, mean=-1.0)))
    pm.pack(other, tmp_path / "o.pack", hours=1.0, window=128, seed=5)
    with pytest.raises(ValueError, match="another cache"):
        pm.unpack([tmp_path / "p0.pack", tmp_path / "o.pack"], tmp_path / "mixed")
