"""Training: augmentations, negatives, losses, the log-mel cache, exact resume, export."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import soundfile as sf

torch = pytest.importorskip("torch")

from audioembed import record  # noqa: E402
from audioembed.config import ModelConfig  # noqa: E402
from audioembed.train import augment, negatives  # noqa: E402
from audioembed.mel import LogMel  # noqa: E402
from audioembed.train.data import MelCache, build_cache  # noqa: E402
from audioembed.train.control import StopSignals  # noqa: E402
from audioembed.train.loop import Trainer  # noqa: E402
from audioembed.errors import TrainingError  # noqa: E402
from audioembed.train.settings import STRATEGIES, TrainSettings  # noqa: E402

from conftest import noisy, tone  # noqa: E402

def _config(tmp_path, dim: int = 32, **more) -> str:
    """A --config file for a CLI run's tiny encoder (dim and most settings are config-file keys, not flags)."""
    path = tmp_path / f"config-{dim}-{len(list(tmp_path.glob('config-*')))}.json"
    path.write_text(json.dumps({"dim": dim, **more}))
    return str(path)


TINY = dict(dim=32, channels=8, proj_hidden=64, proj_dim=16, batch_size=8, mixup_bank=16, log_every=2, ckpt_every=1000)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """A dozen generated clips: chirps and noise at several rates, one stereo, one corrupt file."""
    root = tmp_path_factory.mktemp("train-audio")
    (root / "sub").mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        sr = (16000, 22050, 44100)[i % 3]
        t = np.arange(int(sr * (0.6 + 0.25 * i))) / sr
        x = 0.3 * np.sin(2 * np.pi * (150 + 90 * i) * t * (1 + 0.3 * t)) + 0.03 * rng.standard_normal(len(t))
        if i == 5:
            x = np.stack([x, 0.5 * x], axis=1)
        sf.write(root / ("sub" if i % 2 else ".") / f"clip{i}.{'flac' if i % 3 else 'wav'}", x.astype(np.float32), sr)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return root


@pytest.fixture(scope="module")
def cache(audio_dir, tmp_path_factory):
    return build_cache(audio_dir, tmp_path_factory.mktemp("melcache"), ModelConfig(), workers=2, log=lambda m: None)


# -- data -----------------------------------------------------------------------------------

def test_cache_logmel_matches_model_frontend():
    from audioembed.nn.frontend import LogMel as ModelLogMel

    cfg = ModelConfig()
    wave = noisy(seconds=1.3)
    pad = cfg.n_fft // 2
    padded = np.pad(wave, pad, mode="reflect")
    ref = ModelLogMel(cfg)(torch.from_numpy(padded)[None])[0].T.numpy()
    ours = LogMel(cfg).of_wave(wave)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-4, rtol=0)


def test_training_pools_clips_as_inference_does(tiny_model_dir):
    """Online.embed (what BYOL-A trains) and the Embedder (what users get) on the same weights: one vector."""
    from safetensors.torch import load_file

    from audioembed import Embedder
    from audioembed.train.byol import Online, Target

    import reference

    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    online = Online(cfg, proj_hidden=16, proj_dim=8)
    online.encoder.load_state_dict(load_file(str(tiny_model_dir / "model.safetensors")))
    online.eval()
    clips = [noisy(seconds=1.0, seed=1), noisy(seconds=1.0, seed=2)]
    mels = torch.tensor(np.stack([reference.normalised_logmel(x, cfg) for x in clips]), dtype=torch.float32)
    with torch.no_grad():
        trained = online.embed(mels).numpy()
        projected = Target(online)(mels)
    expected = Embedder(tiny_model_dir, backend="onnx").embed(clips, sr=16000)
    np.testing.assert_allclose(trained, expected, rtol=0, atol=1e-4)
    with torch.no_grad():
        np.testing.assert_allclose(projected, online.projector(torch.from_numpy(expected)), rtol=0, atol=1e-4)


def test_cache_counts_files_skips_corrupt_and_is_reused(audio_dir, cache, tmp_path):
    assert cache.meta["files"] == 12 and len(cache.meta["failed"]) == 1 and "broken.wav" in cache.meta["failed"][0]
    assert len(cache) == 12 and cache.frames.dtype == np.float16
    assert cache.std > 0 and np.isfinite(cache.mean)
    again = build_cache(audio_dir, cache.folder.parent, ModelConfig(), log=lambda m: pytest.fail("rebuilt: " + m))
    assert again.folder == cache.folder



def test_two_builders_of_one_cache_decode_once(audio_dir, tmp_path, monkeypatch):
    """Two runs started on a new corpus at once: the second waits for the first's cache and reuses it (both writing
    frames.f16.tmp, the slower one's rename failed)."""
    import threading

    from audioembed.train import data

    waiting, calls, real = threading.Event(), [], data._segments

    def slow_segments(path, cfg):
        calls.append(path)
        waiting.wait(timeout=10)  # the first builder holds on until the second is waiting on it
        return real(path, cfg)

    monkeypatch.setattr(data, "_segments", slow_segments)
    results, logs = {}, {"first": [], "second": []}

    def build(name):
        def log(message):
            logs[name].append(message)
            if "being built by another process" in message:
                waiting.set()
        try:
            results[name] = build_cache(audio_dir, tmp_path / "mc", ModelConfig(), workers=1, log=log)
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            results[name] = exc

    first = threading.Thread(target=build, args=("first",))
    first.start()
    while not calls:  # the first builder is decoding
        first.join(0.01)
    second = threading.Thread(target=build, args=("second",))
    second.start()
    first.join(30)
    second.join(30)
    assert isinstance(results["first"], MelCache) and isinstance(results["second"], MelCache), results
    assert any("being built by another process" in m for m in logs["second"])
    assert len(calls) == 13  # every file decoded once, by the first builder
    assert results["second"].folder == results["first"].folder and len(results["second"]) == 12

def test_crops_are_standardised_and_reproducible(cache):
    a = cache.sample(6, 96, torch.Generator().manual_seed(3))
    b = cache.sample(6, 96, torch.Generator().manual_seed(3))
    assert a.shape == (6, 64, 96) and torch.equal(a, b)
    # Over the clips' own frames the standardised values have mean 0 and std 1 (the dataset stats).
    frames = (np.asarray(cache.frames, dtype=np.float64) - cache.mean) / cache.std
    assert abs(frames.mean()) < 1e-3 and abs(frames.std() - 1) < 1e-3
    # Clips shorter than a crop sit in silence (log of eps), as zero-padded audio would.
    short = int(np.argmin(cache.lengths))
    assert cache.lengths[short] < 96
    crop = cache.sample(1, 96, torch.Generator().manual_seed(0), clips=[short])[0]
    silence = (cache.pad_value - cache.mean) / cache.std
    assert int(torch.isclose(crop, torch.tensor(silence)).all(dim=0).sum()) == 96 - cache.lengths[short]


# -- augmentations and negatives ------------------------------------------------------------

def test_views_keep_shape_differ_and_are_reproducible():
    x = torch.randn(4, 64, 96)
    s = TrainSettings(mixup_bank=8)

    def run(seed):
        maker = augment.ViewMaker(s)
        maker.bank.push(torch.randn(8, 64, 96, generator=torch.Generator().manual_seed(9)))
        return maker(x, torch.Generator().manual_seed(seed))

    v1, v2 = run(0)
    w1, w2 = run(0)
    assert v1.shape == v2.shape == x.shape
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    assert not torch.allclose(v1, v2)
    assert abs(float(v1.mean())) < 1e-5 and abs(float(v1.std()) - 1) < 1e-4  # post-normalised


def test_mixup_bank_mixes_in_linear_amplitude_and_rings():
    bank = augment.MixupBank(size=3, ratio=0.4)
    x = torch.zeros(2, 4, 5)
    assert torch.equal(bank(x, torch.Generator()), x)  # empty bank: identity
    bank.push(torch.full((2, 4, 5), 2.0))
    assert bank.count == 2 and bank.pos == 2
    bank.push(torch.full((2, 4, 5), 2.0))
    assert bank.count == 3 and bank.pos == 1  # a ring: the oldest item was overwritten
    out = bank(x, torch.Generator().manual_seed(0))
    # log((1-r) e^0 + r e^2) lies between 0 and log(1 - 0.4 + 0.4 e^2)
    assert float(out.min()) >= 0 and float(out.max()) <= np.log(0.6 + 0.4 * np.e**2) + 1e-5


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s not in ("freq_shift", "pitch_shift")])
def test_each_negative_moves_content_and_keeps_values(strategy):
    x = torch.randn(64, 96)
    for seed in range(50):
        y = negatives.perturb_with(x[None], [strategy], 4, torch.Generator().manual_seed(seed))[0]
        assert y.shape == x.shape
        assert not torch.equal(y, x), f"{strategy} returned the input unchanged (seed {seed})"
        assert torch.equal(torch.sort(y.flatten()).values, torch.sort(x.flatten()).values)  # same content


def test_freq_shift_moves_bands_by_the_drawn_amount_and_fills_with_silence():
    x = torch.randn(64, 96)
    seen = set()
    for seed in range(60):
        y = negatives.perturb_with(x[None], ["freq_shift"], 4, torch.Generator().manual_seed(seed), shift=(2, 5))[0]
        shift = next(k for k in (*range(2, 6), *range(-5, -1)) if torch.equal(y[max(k, 0) : 64 + min(k, 0)], x[max(-k, 0) : 64 - max(k, 0)]))
        seen.add(shift)
        filled = y[:shift] if shift > 0 else y[shift:]
        assert torch.all(filled == x.min())  # bands moved in from outside are silence
    assert seen == {2, 3, 4, 5, -2, -3, -4, -5}  # both directions, every magnitude in range


def test_pitch_shift_moves_a_harmonic_by_the_interval_on_the_hz_axis():
    """A tone's mel peak, pitch-shifted by k semitones, lands where the tone 2^(k/12) higher peaks."""
    to_mel = LogMel(ModelConfig())

    def logmel(hz):
        return torch.from_numpy(to_mel.of_wave(tone(hz, seconds=0.5)).T.copy())

    def centroid(m):  # spectral centroid over the mel bands: a fractional band position
        energy = m.exp().mean(1)
        return float((energy * torch.arange(len(energy))).sum() / energy.sum())

    x = logmel(440.0)
    expected = {k: centroid(logmel(440.0 * 2 ** (k / 12))) for k in (-3, -2, -1, 1, 2, 3)}
    moved = set()
    for seed in range(40):
        got = centroid(negatives.perturb_with(x[None], ["pitch_shift"], 4, torch.Generator().manual_seed(seed), semitones=(1, 3))[0])
        k = min(expected, key=lambda k: abs(expected[k] - got))
        assert abs(expected[k] - got) < 0.15, (seed, got)
        moved.add(k)
    assert moved == {-3, -2, -1, 1, 2, 3}  # both directions, every interval in range, never 0


def test_batched_perturb_equals_item_by_item():
    """One gather per axis for a batch of mixed strategies gives each item's own perturbation."""
    x = torch.randn(24, 64, 96)
    strategies = [STRATEGIES[i % len(STRATEGIES)] for i in range(24)]
    batch = negatives.perturb_with(x, strategies, 4, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    for item, strategy, got in zip(x, strategies, batch):
        assert torch.equal(got, negatives.perturb_with(item[None], [strategy], 4, g)[0])


PINNED_SUMS = [13776.0, 55200.0, 92064.0, 128928.0, 18336.0, 55200.0, 89508.0, 128928.0, 16681.66, 54570.0, 90409.664, 111720.0]
PINNED_CORNERS = [96.0, 372.0, 564.0, 587.0, 6.0, 203.0, 456.0, 672.0, 1.003, 228.0, 385.003, 576.0]


def test_negatives_random_stream_is_pinned():
    """The draws (strategy, amount, sign, order) per item are part of a run's recipe: a checkpoint resumes
    them exactly, and the shipped model's run used them. Numbers recorded from the per-item implementation
    that trained v0.2.0; a change to the order of draws fails here."""
    x = torch.arange(4 * 16 * 12, dtype=torch.float32).reshape(4, 16, 12)
    got = negatives.candidates(x, STRATEGIES, 4, torch.Generator().manual_seed(3), 3)
    assert got.shape == (3, 4, 16, 12)
    assert [round(float(v), 3) for v in got.sum(dim=(2, 3)).flatten()] == PINNED_SUMS
    assert [round(float(v), 3) for v in got[:, :, 0, 0].flatten()] == PINNED_CORNERS


def test_segment_permutation_is_never_identity_even_for_two_segments():
    for seed in range(30):
        axis, idx, _ = negatives._index("freq_shuffle", 10, 5, 2, (2, 12), torch.Generator().manual_seed(seed))
        assert axis == 0 and idx.tolist() != list(range(10)) and sorted(idx.tolist()) == list(range(10))


def test_batch_perturb_uses_only_configured_strategies():
    x = torch.randn(16, 64, 96)
    y = negatives.perturb(x, ("time_flip",), 4, torch.Generator().manual_seed(0))
    assert torch.equal(y, x.flip(2))


def test_settings_reject_unknown_strategy_and_parse_none():
    assert TrainSettings(negatives="none").negatives == ()
    assert TrainSettings(negatives="all").negatives == STRATEGIES
    with pytest.raises(ValueError, match="unknown negative"):
        TrainSettings(negatives="freq_roll,spin")


# -- training -------------------------------------------------------------------------------

def _trainer(cache, **kw):
    torch.set_num_threads(1)
    return Trainer(TrainSettings(**{**TINY, **kw}), cache, "tiny", log=lambda m: None)


def test_a_few_steps_lower_the_loss(cache):
    t = _trainer(cache, steps=40, lr=1e-3, negatives="none")
    losses = [t.train_step()["loss"] for _ in range(40)]
    assert np.mean(losses[-8:]) < np.mean(losses[:8]) - 0.1


def test_lr_decay_from_holds_then_falls_on_a_cosine_to_zero_and_a_resume_follows_it(cache, tmp_path):
    t = _trainer(cache, steps=10, lr=1e-3, lr_decay_from=0.6, negatives="none")
    seen = [t.train_step()["lr"] for _ in range(10)]
    assert seen[:7] == [1e-3] * 7  # steps 0..6: at or before 0.6 of 10
    assert seen[7] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 1 / 4)))
    assert seen[7] > seen[8] > seen[9] > 0 and t.lr_at(10) == pytest.approx(0.0, abs=1e-15)
    # A constant run's checkpoint resumed with a decay: the optimizer's saved lr does not win.
    flat = _trainer(cache, steps=10, lr=1e-3, negatives="none")
    for _ in range(8):
        flat.train_step()
    flat.save(tmp_path / "c.pt")
    resumed = _trainer(cache, steps=10, lr=1e-3, lr_decay_from=0.6, negatives="none")
    resumed.load(tmp_path / "c.pt")
    assert resumed.train_step()["lr"] == pytest.approx(seen[8])
    with pytest.raises(TrainingError):
        TrainSettings(lr_decay_from=1.5)
    # lr_after: the same steps, the cosine starting from a lower rate (a drop at lr_decay_from, then the decay).
    dropped = _trainer(cache, steps=10, lr=1e-3, lr_decay_from=0.6, lr_after=2e-4, negatives="none")
    assert [dropped.lr_at(i) for i in range(6)] == [1e-3] * 6 and dropped.lr_at(6) == 2e-4
    assert [dropped.lr_at(i) for i in range(7, 11)] == pytest.approx([v / 5 for v in seen[7:]] + [0.0], abs=1e-15)
    with pytest.raises(TrainingError, match="lr_after"):
        TrainSettings(lr_after=0.0)
    # Past the last step of a constant schedule (benchmarks/train_speed.py runs as many steps as it times): lr holds.
    assert flat.lr_at(10) == flat.lr_at(12) == 1e-3


def test_negatives_term_present_and_none_is_plain_byol(cache, monkeypatch):
    with_neg = _trainer(cache, steps=2).train_step()
    assert {"loss_neg", "cos_neg"} <= set(with_neg)
    assert with_neg["loss"] == pytest.approx(with_neg["loss_pos"] + with_neg["loss_neg"], rel=1e-6)

    def forbidden(*a, **k):
        raise AssertionError("negatives generated with --negatives none")

    zero = _trainer(cache, steps=3, neg_lambda=0.0, neg_candidates=3)
    zero_rows = [zero.train_step() for _ in range(3)]
    monkeypatch.setattr("audioembed.train.loop.candidates", forbidden)
    plain_trainer = _trainer(cache, steps=3, negatives="none")
    plain_rows = [plain_trainer.train_step() for _ in range(3)]
    plain = plain_rows[0]
    assert "loss_neg" not in plain and plain["loss"] == plain["loss_pos"]
    # The ablation sees exactly the same crops, views and dropout draws: only the negative term
    # differs. With that term's weight at 0, the runs stay bit-identical step after step.
    assert plain["loss_pos"] == with_neg["loss_pos"]
    assert [r["loss_pos"] for r in plain_rows] == [r["loss_pos"] for r in zero_rows]


def test_representation_space_negatives(cache):
    """neg_space=representation compares clip embeddings (post-ReLU pooling: cosine >= 0)."""
    t = _trainer(cache, steps=2, neg_space="representation", neg_margin=0.0)
    row = t.train_step()
    assert row["cos_neg"] >= 0 and row["loss_neg"] == pytest.approx(row["cos_neg"], rel=1e-5)
    with pytest.raises(ValueError, match="neg_space"):
        TrainSettings(neg_space="pixels")


def test_head_space_negatives_train_their_own_projector_and_leave_the_ablation_exact(cache, tmp_path):
    """neg_space=head: the negatives' term goes through a projector of its own, which the views'
    loss never touches; the shared layers start as without it (the exported encoder never holds it)."""
    plain = _trainer(cache, steps=2, negatives="none", neg_space="head")
    assert plain.online.neg_head is None  # the ablation builds no head
    t = _trainer(cache, steps=2, neg_space="head", neg_margin=-1.0, neg_lambda=1.0)
    assert t.online.neg_head is not None and t.online.projector is not t.online.neg_head
    shared, mine = plain.online.state_dict(), t.online.state_dict()
    assert sorted(set(mine) - set(shared)) and all(k.startswith("neg_head.") for k in set(mine) - set(shared))
    assert all(torch.equal(v, mine[k]) for k, v in shared.items())  # same initial encoder, projector and predictor
    before = [p.detach().clone() for p in t.online.neg_head.parameters()]
    row = t.train_step()
    assert -1.0 <= row["cos_neg"] <= 1.0 and row["loss_neg"] == pytest.approx(row["cos_neg"] + 1.0, rel=1e-4)
    assert any(not torch.equal(a, p) for a, p in zip(before, t.online.neg_head.parameters()))
    views = torch.randn(4, t.cfg.n_mels, t.s.crop_frames)
    with pytest.raises(ValueError, match="first half of the views: got 3 negatives for 4 views"):
        t.online(views, views[:3], "head")  # anchors are read off the views by position: a mismatch is a bug
    zero = _trainer(cache, steps=2, neg_space="head", neg_lambda=0.0)
    zero_rows = [zero.train_step() for _ in range(2)]
    plain = _trainer(cache, steps=2, negatives="none", neg_space="head")  # each trainer seeds the global RNG
    plain_rows = [plain.train_step() for _ in range(2)]
    assert [r["loss_pos"] for r in plain_rows] == [r["loss_pos"] for r in zero_rows]
    # a checkpoint carries the head and resumes it
    t.save(tmp_path / "ckpt.pt")
    again = _trainer(cache, steps=2, neg_space="head")
    again.load(tmp_path / "ckpt.pt")
    assert all(torch.equal(a, b) for a, b in zip(again.online.neg_head.parameters(), t.online.neg_head.parameters()))


def test_negative_hinge_pushes_negatives_away(cache):
    """Same draws, same steps: the hinge's gradient (λ > 0) keeps negatives further from their anchors than λ = 0."""
    runs = {}
    for lam in (0.0, 5.0):
        t = _trainer(cache, steps=30, lr=1e-3, neg_lambda=lam, neg_margin=0.0)
        runs[lam] = [t.train_step() for _ in range(30)]
    cos = {lam: np.mean([r["cos_neg"] for r in rows[-10:]]) for lam, rows in runs.items()}
    assert runs[0.0][0]["cos_neg"] == pytest.approx(runs[5.0][0]["cos_neg"])  # identical start
    assert cos[5.0] < cos[0.0] - 0.1


def test_the_representation_cap_is_a_second_hinge_on_the_clip_embeddings(cache):
    """--neg-repr-margin adds λ·relu(cos(y_neg, y_anchor) − m) on the clip embeddings, beside the head's
    hinge; at m = 1 it can never bite, and the run stays bit-identical to one without it."""
    head = dict(neg_space="head", neg_lambda=1.0)
    base = _trainer(cache, steps=3, **head)
    base_rows = [base.train_step() for _ in range(3)]
    assert "cos_repr" not in base_rows[0]
    always = _trainer(cache, steps=3, neg_repr_margin=-1.0, **head)
    row = always.train_step()
    assert row["loss_neg"] == base_rows[0]["loss_neg"] and row["cos_neg"] == base_rows[0]["cos_neg"]  # same draws
    assert 0.0 <= row["cos_repr"] <= 1.0  # pooled post-ReLU features: cosine >= 0
    assert row["loss_repr"] == pytest.approx(row["cos_repr"] + 1.0, rel=1e-5)
    assert row["loss"] == pytest.approx(base_rows[0]["loss"] + row["loss_repr"], rel=1e-5)
    never = _trainer(cache, steps=3, neg_repr_margin=1.0, **head)
    never_rows = [never.train_step() for _ in range(3)]
    assert all(r["loss_repr"] == 0.0 for r in never_rows)
    assert [r["loss"] for r in never_rows] == [r["loss"] for r in base_rows]
    with pytest.raises(ValueError, match="neg_repr_margin"):
        TrainSettings(neg_space="representation", neg_repr_margin=0.8)


def test_the_representation_cap_pushes_the_clip_embeddings_apart(cache):
    """Same draws, same steps: with the cap at 0 and a large weight, the representation's cosine to the
    negatives ends lower than with the cap off (m = 1)."""
    runs = {}
    for m in (1.0, 0.0):
        t = _trainer(cache, steps=40, lr=3e-3, neg_space="head", neg_lambda=5.0, neg_repr_margin=m, negatives="pitch_shift")
        runs[m] = [t.train_step() for _ in range(40)]
    cos = {m: np.mean([r["cos_repr"] for r in rows[-10:]]) for m, rows in runs.items()}
    assert runs[1.0][0]["cos_repr"] == pytest.approx(runs[0.0][0]["cos_repr"])  # identical start
    assert cos[0.0] < cos[1.0] - 0.05, cos  # measured: 0.83 against 0.95


def _state(t):
    return {**{f"online.{k}": v for k, v in t.online.state_dict().items()},
            **{f"target.{k}": v for k, v in t.target.state_dict().items()}}


def test_resume_continues_exactly(cache, tmp_path):
    full = _trainer(cache, steps=6, neg_candidates=2)
    full.fit(tmp_path / "full.pt")
    first = _trainer(cache, steps=6, neg_candidates=2)
    assert first.fit(tmp_path / "part.pt", stop_at_step=3) is False and first.step == 3
    second = _trainer(cache, steps=6, neg_candidates=2)
    second.load(tmp_path / "part.pt")
    assert second.step == 3 and second.views.bank.count == first.views.bank.count
    second.fit(tmp_path / "part.pt")
    a, b = _state(full), _state(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(full.gen.get_state(), second.gen.get_state())
    assert torch.equal(full.neg_gen.get_state(), second.neg_gen.get_state())
    assert [r["step"] for r in full.history] == [r["step"] for r in second.history]
    assert full.history[0]["loss"] == second.history[0]["loss"]  # the row logged before the stop
    # Each fit() is a session, recorded with the steps it trained and its wall time, through the checkpoint.
    assert [(x["from_step"], x["to_step"]) for x in full.sessions] == [(0, 6)]
    assert [(x["from_step"], x["to_step"]) for x in second.sessions] == [(0, 3), (3, 6)]
    assert second.sessions[0] == first.sessions[0] and all(x["wall_seconds"] > 0 for x in second.sessions)
    cpu = f"CPU ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} thread"
    assert all(x["machine"].startswith(cpu) for x in second.sessions)  # what its wall time was measured on
    # A checkpoint from before sessions were recorded: its steps as one session of unknown length.
    state = torch.load(tmp_path / "full.pt", weights_only=True)
    del state["sessions"]
    state["step"] = 5
    torch.save(state, tmp_path / "old.pt")
    old = _trainer(cache, steps=6, neg_candidates=2)
    old.load(tmp_path / "old.pt")
    assert old.sessions == [{"from_step": 0, "to_step": 5, "wall_seconds": None}]


def test_freq_crop_until_equals_a_run_resumed_without_the_crop_at_that_step(cache, tmp_path):
    """One run that stops the frequency crop at half way is bit-identical to a cropped run stopped there and
    resumed with the crop off (rrc_freq_scale 1-1): the same random draws either way. And the crop matters."""
    one = _trainer(cache, steps=6, freq_crop_until=0.5, neg_candidates=2)
    assert one.view_settings().rrc_freq_scale == (0.6, 1.5)
    one.fit(tmp_path / "one.pt")
    assert one.view_settings().rrc_freq_scale == (1.0, 1.0) and one.s.rrc_freq_scale == (0.6, 1.5)
    first = _trainer(cache, steps=6, neg_candidates=2)
    first.fit(tmp_path / "two.pt", stop_at_step=3)
    second = _trainer(cache, steps=6, neg_candidates=2, rrc_freq_scale=(1.0, 1.0))
    second.load(tmp_path / "two.pt")
    second.fit(tmp_path / "two.pt")
    a, b = _state(one), _state(second)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["probe_pos"] for r in one.history] == [r["probe_pos"] for r in second.history]
    cropped = _trainer(cache, steps=6, neg_candidates=2)
    cropped.fit(tmp_path / "cropped.pt")
    c = _state(cropped)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(TrainingError, match="freq_crop_until"):
        TrainSettings(freq_crop_until=1.5)


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(cache, tmp_path, monkeypatch):
    full = _trainer(cache, steps=5)
    full.fit(tmp_path / "full.pt")
    interrupted = _trainer(cache, steps=5)
    real_step = interrupted.train_step

    def ctrl_c_within_step_2(**kw):
        if interrupted.step == 1:
            os.kill(os.getpid(), signal.SIGINT)  # lands mid-step: the step finishes, then the loop stops
        return real_step(**kw)

    monkeypatch.setattr(interrupted, "train_step", ctrl_c_within_step_2)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(tmp_path / "ctrl-c.pt")
    resumed = _trainer(cache, steps=5)
    resumed.load(tmp_path / "ctrl-c.pt")
    assert resumed.step == 2
    resumed.fit(tmp_path / "ctrl-c.pt")
    a, b = _state(full), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_checkpoints_like_ctrl_c_and_the_handler_is_put_back(cache, tmp_path, monkeypatch):
    """A background job ignores SIGINT, so `kill` (SIGTERM) is how it gets stopped: it must checkpoint too."""
    before = signal.getsignal(signal.SIGTERM)
    killed = _trainer(cache, steps=5)
    real_step = killed.train_step

    def step_then_kill(**kw):
        stats = real_step(**kw)
        if killed.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return stats

    monkeypatch.setattr(killed, "train_step", step_then_kill)
    with pytest.raises(KeyboardInterrupt):
        killed.fit(tmp_path / "killed.pt")
    assert signal.getsignal(signal.SIGTERM) is before
    resumed = _trainer(cache, steps=5)
    resumed.load(tmp_path / "killed.pt")
    assert resumed.step == 3


def test_a_second_ctrl_c_stops_at_once_but_sigterm_never_escalates():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.requested
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_an_interrupted_save_leaves_the_previous_checkpoint_and_no_temporary_file(cache, tmp_path, monkeypatch):
    t = _trainer(cache, steps=3)
    t.fit(tmp_path / "c.pt", stop_at_step=1)
    before = (tmp_path / "c.pt").read_bytes()
    real_save = torch.save

    def save_then_ctrl_c(obj, f):
        real_save(obj, f)
        raise KeyboardInterrupt  # a second Ctrl-C during the write

    monkeypatch.setattr(torch, "save", save_then_ctrl_c)
    t.train_step()
    with pytest.raises(KeyboardInterrupt):
        t.save(tmp_path / "c.pt")
    assert (tmp_path / "c.pt").read_bytes() == before and sorted(tmp_path.iterdir()) == [tmp_path / "c.pt"]


def test_settings_from_a_config_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"steps": 99, "batch_size": 4, "negatives": ["freq_roll"], "rrc_time_scale": [0.5, 2.0]}')
    s = TrainSettings.from_file(path, steps=4)  # flags override the file
    assert (s.steps, s.batch_size, s.negatives, s.rrc_time_scale, s.lr) == (4, 4, ("freq_roll",), (0.5, 2.0), 1e-4)
    path.write_text('{"step": 4}')
    with pytest.raises(ValueError, match=r"settings\.json: unknown setting 'step' \(did you mean 'steps'\?\)"):
        TrainSettings.from_file(path)


def test_cli_pretrain_stop_resume_export_and_backend_parity(audio_dir, tmp_path):
    from typer.testing import CliRunner

    from audioembed import Embedder
    from audioembed.cli import app

    runner = CliRunner()
    base = ["pretrain", str(audio_dir), "--cache-dir", str(tmp_path / "cache"), "--steps", "4", "--batch-size", "4",
            "--config", _config(tmp_path), "--threads", "1"]
    out = tmp_path / "m"
    r = runner.invoke(app, [*base, "-o", str(out), "--stop-after", "0"])
    assert r.exit_code == 0, r.output
    assert not (out / "config.json").exists() and (tmp_path / "m.checkpoints" / "last.pt").exists()
    r = runner.invoke(app, [*base, "-o", str(out)])
    assert r.exit_code == 2 and "--resume" in r.output
    r = runner.invoke(app, [*base, "-o", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    cfg = ModelConfig.load(out / "config.json")
    assert "extra" not in (out / "config.json").read_text()  # the training record goes to training.json
    rec = record.load(out).to_dict()
    assert cfg.dim == 32 and rec["training"]["steps"] == 4 and cfg.norm_std != 1.0
    card = (out / "README.md").read_text()
    assert "BYOL-A with adversarial" in card and cfg.sha256["model.onnx"] in card
    # stopped after its first step, then resumed: two sessions, in training.json and on the card
    assert [(x["from_step"], x["to_step"]) for x in rec["training"]["sessions"]] == [(0, 1), (1, 4)]
    assert "Trained in 2 sessions" in card and "steps 0–1: " in card and "steps 1–4: " in card
    assert card.startswith("---\n") and "library_name: audioembed" in card  # Hub metadata, by audioembed.card
    # The training folder by its name only: no path of the machine that trained it, in the config or the card.
    assert rec["data"]["data_dir"] == audio_dir.name
    assert str(audio_dir.parent) not in card and str(audio_dir.parent) not in (out / "training.json").read_text()
    history = rec["training"]["history"]  # what the docs' training curves are drawn from
    assert history[-1]["step"] == 4 and {"loss", "probe_pos", "probe_neg"} <= set(history[-1])
    # the last row in significant digits, as the history: a rate of 3e-5 rounded to 4 decimals was recorded as 0.0
    final = rec["training"]["final"]
    assert final == {k: v for k, v in history[-1].items() if k != "step"} and 0 < final["lr"] < 1e-3
    # "auto" resolved to what the run used (float32 on a CPU without bfloat16 hardware), in the config and the card
    from audioembed.train.precision import resolve_precision

    used = resolve_precision("auto", "cpu")[0]
    assert rec["training"]["precision"] == used and f"{used} arithmetic" in card

    straight = tmp_path / "straight"  # the same settings, from a --config file (--steps overrides it)
    (tmp_path / "settings.json").write_text('{"steps": 99, "batch_size": 4, "dim": 32}')
    r = runner.invoke(app, ["pretrain", str(audio_dir), "--cache-dir", str(tmp_path / "cache"), "--threads", "1",
                            "--config", str(tmp_path / "settings.json"), "--steps", "4", "-o", str(straight)])
    assert r.exit_code == 0, r.output
    assert (out / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()

    clip = tone(440, seconds=2.0) + noisy(seconds=2.0)
    a = Embedder(out, backend="torch").embed(clip, sr=16000)
    b = Embedder(out, backend="onnx").embed(clip, sr=16000)
    assert a.shape == (32,) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def _torchrun_pretrain(audio_dir, tmp_path, *flags) -> list[str]:
    """`torchrun` with two CPU processes running `audioembed pretrain` into tmp_path/ddp (skip without torchrun)."""
    import shutil
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed beside this python")
    return [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "audioembed.cli", "pretrain", str(audio_dir),
            "-o", str(tmp_path / "ddp"), "--threads", "1", "--cache-dir", str(tmp_path / "cache"), *flags]


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_torchrun_two_processes_on_cpu(audio_dir, tmp_path):
    """DDP over gloo: two ranks draw different crops, rank 0 alone writes checkpoint and model."""
    import subprocess

    out = tmp_path / "ddp"
    cmd = _torchrun_pretrain(audio_dir, tmp_path, "--steps", "2", "--batch-size", "4", "--config", _config(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "(2 process(es), float32)" in r.stderr or "(2 process(es), bfloat16)" in r.stderr and (out / "model.onnx").exists()
    state = torch.load(tmp_path / "ddp.checkpoints" / "last.pt", weights_only=True)
    assert state["world"] == 2 and len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["gen"], state["ranks"][1]["gen"])
    assert record.load(out).to_dict()["training"]["samples"] == 2 * 4 * 2


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_torchrun_ranks_stop_together_on_sigterm_and_on_their_clocks(audio_dir, tmp_path):
    """torchrun passes a SIGTERM to every rank at slightly different moments, and each rank's clock runs
    out at a different step: both stops must be agreed, so no rank waits in a collective the other left."""
    import subprocess
    import time

    log = tmp_path / "log.txt"
    cmd = _torchrun_pretrain(audio_dir, tmp_path, "--steps", "100000", "--batch-size", "2", "--config", _config(tmp_path, 16))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as err:
        job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = time.monotonic() + 240
        while "step 20/" not in log.read_text() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
        job.send_signal(signal.SIGTERM)  # the torchrun agent: it forwards SIGTERM to both ranks
        job.wait(timeout=120)
    text = log.read_text()
    assert "interrupted at step" in text, text[-3000:]
    state = torch.load(tmp_path / "ddp.checkpoints" / "last.pt", weights_only=True)
    assert state["world"] == 2 and f"interrupted at step {state['step']}:" in text
    r = subprocess.run(cmd + ["--resume", "--stop-after", "0.002"], capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0 and "stopped at step" in r.stderr, r.stderr[-3000:]
    assert torch.load(tmp_path / "ddp.checkpoints" / "last.pt", weights_only=True)["step"] > state["step"]


def test_balanced_sampling_draws_each_top_folder_equally(tmp_path):
    """--balance-folders: a folder with 1 clip is drawn as often as one with 7 clips."""
    for i in range(8):
        folder = tmp_path / "audio" / ("big" if i < 7 else "small")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"c{i}.wav", 0.1 * np.sin(np.arange(8000) * (i + 1) / 50), 16000)
    cache = build_cache(tmp_path / "audio", tmp_path / "mc", ModelConfig(), log=lambda m: None)
    assert cache.group_names == ["big", "small"]
    assert cache.group_hours()["big"] == pytest.approx(7 * cache.group_hours()["small"], rel=0.01)
    small = cache.group_clips[1][0]
    g = torch.Generator().manual_seed(0)
    balanced = np.concatenate([cache.draw_clips(100, g, balanced=True) for _ in range(20)])
    uniform = np.concatenate([cache.draw_clips(100, g) for _ in range(20)])
    assert abs(np.mean(balanced == small) - 0.5) < 0.05
    assert abs(np.mean(uniform == small) - 1 / 8) < 0.03


def test_hardest_of_k_picks_the_candidate_the_network_finds_closest(cache):
    t = _trainer(cache, neg_candidates=4, negatives="freq")
    anchors = cache.sample(8, 96, torch.Generator().manual_seed(0))
    state = t.neg_gen.get_state()
    neg, best = t.hardest_negatives(anchors)
    t.neg_gen.set_state(state)
    cands = negatives.candidates(anchors, t.s.negatives, t.s.neg_segments, t.neg_gen, 4, t.s.neg_shift)
    t.online.eval()
    with torch.no_grad(), t.autocast():
        ya = t.online.embed(anchors).float()
        cos = torch.stack([torch.nn.functional.cosine_similarity(t.online.embed(c).float(), ya) for c in cands])
    t.online.train()
    pick = cos.argmax(0)
    assert torch.equal(neg, cands[pick, torch.arange(8)])
    assert torch.allclose(best, cos.max(0).values, atol=1e-2)
    assert len(set(pick.tolist())) > 1  # not always the first candidate


def test_bfloat16_and_float32_steps_agree_in_loss(cache):
    losses = {}
    for precision in ("float32", "bfloat16"):
        t = _trainer(cache, precision=precision)
        losses[precision] = [t.train_step()["loss"] for _ in range(3)]
    assert losses["float32"] == pytest.approx(losses["bfloat16"], abs=0.05)


def test_batched_resize_crop_matches_per_item_bicubic_resize():
    """One grid_sample for the batch = each item's crop resized alone (up to the crop's edges)."""
    x = torch.randn(16, 64, 96).cumsum(-1) / 5
    assert torch.allclose(augment.random_resize_crop(x, torch.Generator().manual_seed(0), (1, 1), (1, 1), (1, 1)), x, atol=1e-4)
    y = augment.random_resize_crop(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # replay the draws: (h, w, i, j) per item
    u = torch.rand(16, 4, generator=g, dtype=torch.float64)
    canvas = torch.zeros(16, 64, 144)
    canvas[:, :, 24:120] = x
    h, w = (64 * (0.6 + 0.9 * u[:, 0])).long().clamp(1, 64), (96 * (0.6 + 0.9 * u[:, 1])).long().clamp(1, 144)
    i, j = (u[:, 2] * (64 - h + 1)).long(), (u[:, 3] * (144 - w + 1)).long()
    for k in range(16):
        crop = canvas[k, i[k] : i[k] + h[k], j[k] : j[k] + w[k]][None, None]
        ref = torch.nn.functional.interpolate(crop, size=(64, 96), mode="bicubic", align_corners=True)[0, 0]
        assert (ref - y[k]).abs().mean() < 0.02 * ref.abs().mean()


def test_cli_cache_only_builds_the_cache_and_trains_nothing(audio_dir, tmp_path):
    from typer.testing import CliRunner

    from audioembed.cli import app

    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["pretrain", str(audio_dir), "-o", str(out), "--cache-only", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "c").glob("*/meta.json"))) == 1
    assert not out.exists() and not out.with_name("model.checkpoints").exists()


def test_cli_pretrain_trains_on_a_cache_folder_as_its_data_dir(audio_dir, tmp_path):
    """A cache built once (--cache-only) trains where the audio is not: the GPU machine gets the cache."""
    from typer.testing import CliRunner

    from audioembed.cli import app

    r = CliRunner().invoke(app, ["pretrain", str(audio_dir), "-o", str(tmp_path / "unused"), "--cache-only",
                                 "--cache-dir", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    (folder,) = [p.parent for p in (tmp_path / "c").glob("*/meta.json")]
    moved = tmp_path / "elsewhere" / "melcache"
    moved.parent.mkdir()
    folder.rename(moved)
    out = tmp_path / "model"
    r = CliRunner().invoke(app, ["pretrain", str(moved), "-o", str(out), "--steps", "2", "--batch-size", "4",
                                 "--config", _config(tmp_path), "--threads", "1", "--cache-dir", str(tmp_path / "never")])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "never").exists()  # nothing decoded again
    data = record.load(out).to_dict()["data"]
    assert data["clips"] == MelCache(moved).meta["clips"] and data["data_dir"] == audio_dir.name


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_train_gpu_script_trains_an_arm_for_its_minutes_and_tars_its_last_step(cache, tmp_path):
    """scripts/train_gpu.sh on the CPU (DEVICE=cpu): stop after the budget, export the step reached, tar it."""
    import os
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DEVICE": "cpu",
           "ARMS": "byola32 cropneg32-s43 drop32-s44", "SKIP_SPEED": "1", "MINUTES": "0.02", "THREADS": "1", "PACK": str(cache.folder),
           "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out")}
    r = subprocess.run(["bash", str(root / "scripts" / "train_gpu.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with tarfile.open(tmp_path / "out" / "byola32.tar") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "x")
    assert "byola32.log" in names
    (last,) = {Path(n).parent.name for n in names if n.endswith("model.safetensors")}
    config = ModelConfig.load(tmp_path / "x" / "byola32.snapshots" / last / "config.json")
    reached = int(last.split("-")[1])
    assert reached >= 1 and record.load(tmp_path / "x" / "byola32.snapshots" / last).training["steps"] == reached
    assert f"stopped at step {reached}/" in (tmp_path / "x" / "byola32.log").read_text()
    # An arm named ARM-sSEED trains with that seed; the crop arms with BYOL-A's frequency crop and lambda 0.3.
    with tarfile.open(tmp_path / "out" / "cropneg32-s43.tar") as tar:
        tar.extractall(tmp_path / "y")
    (snap,) = (tmp_path / "y" / "cropneg32-s43.snapshots").iterdir()
    settings = record.load(snap).to_dict()["training"]["settings"]
    assert settings["seed"] == 43 and settings["rrc_freq_scale"] == [0.6, 1.5] and settings["batch_size"] == 32
    assert settings["negatives"] == ["freq_roll", "freq_shuffle", "freq_flip", "freq_shift"] and settings["neg_lambda"] == 0.3
    # The drop arms: the release's defaults (pitch-shift negatives in their own head, the crop), the rate dropped at 0.256.
    with tarfile.open(tmp_path / "out" / "drop32-s44.tar") as tar:
        tar.extractall(tmp_path / "z")
    (snap,) = (tmp_path / "z" / "drop32-s44.snapshots").iterdir()
    settings = record.load(snap).to_dict()["training"]["settings"]
    assert settings["seed"] == 44 and settings["negatives"] == ["pitch_shift"] and settings["neg_space"] == "head"
    assert settings["lr"] == 1e-4 and settings["lr_after"] == 3e-5 and settings["lr_decay_from"] == 0.256
    assert settings["rrc_freq_scale"] == [0.6, 1.5] and settings["batch_size"] == 32
    # An arm that reaches STEPS inside its minutes ends in its model folder, and that goes into the tar too.
    done = subprocess.run(["bash", str(root / "scripts" / "train_gpu.sh")], env={**env, "ARMS": "byola32-s7", "STEPS": "2",
                          "MINUTES": "5", "OUT": str(tmp_path / "out2")}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(tmp_path / "out2" / "byola32-s7.tar") as tar:
        assert {"byola32-s7/model.safetensors", "byola32-s7/config.json"} <= set(tar.getnames())
        tar.extractall(tmp_path / "w")
    assert record.load(tmp_path / "w" / "byola32-s7").to_dict()["training"]["steps"] == 2
    bad = subprocess.run(["bash", str(root / "scripts" / "train_gpu.sh")], env={**env, "ARMS": "nosuch-s1"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown arm nosuch-s1" in bad.stderr


def test_a_snapshot_between_steps_changes_nothing_in_the_run(cache, tmp_path):
    """Export works on a copy: the trained model stays on its device and in train mode (no dropout or
    batch-norm change for the steps after a snapshot), so a run with snapshots ends where one without does."""
    plain = _trainer(cache, steps=4, negatives="none")
    plain.fit(tmp_path / "a.pt")
    snapped = _trainer(cache, steps=4, negatives="none", snapshot_every=1)
    modes = []

    def snapshot(step):
        snapped.export(tmp_path / f"snap{step}", {})
        modes.append(snapped.online.training)

    snapped.fit(tmp_path / "b.pt", snapshot=snapshot)
    assert modes == [True] * 4
    a, b = _state(plain), _state(snapped)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_settings_are_frozen_tuples_and_bad_values_raise_a_training_error():
    import dataclasses

    from audioembed import AudioEmbedError, TrainingError

    s = TrainSettings(negatives="freq_roll,freq_flip", neg_shift=[3, 5], rrc_freq_scale=[0.5, 1.0])
    assert (s.negatives, s.neg_shift, s.rrc_freq_scale) == (("freq_roll", "freq_flip"), (3, 5), (0.5, 1.0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 1.0
    with pytest.raises(TrainingError, match="neg_candidates") as info:
        TrainSettings(neg_candidates=0)
    assert isinstance(info.value, AudioEmbedError) and isinstance(info.value, ValueError)


def test_snapshots_export_the_model_as_it_stood_at_each_interval(audio_dir, tmp_path):
    from typer.testing import CliRunner

    from audioembed import Embedder
    from audioembed.cli import app

    out = tmp_path / "m"
    args = ["pretrain", str(audio_dir), "--cache-dir", str(tmp_path / "cache"), "--steps", "4", "--batch-size", "4",
            "--config", _config(tmp_path), "--threads", "1", "--snapshot-every", "2", "-o", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    snaps = sorted(p.name for p in (tmp_path / "m.snapshots").iterdir())
    assert snaps == ["step-000002", "step-000004"]
    last = tmp_path / "m.snapshots" / "step-000004"
    assert (last / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    early = tmp_path / "m.snapshots" / "step-000002"
    assert record.load(early).to_dict()["training"]["steps"] == 2
    clip = tone(440, seconds=1.5)
    a, b = Embedder(early, backend="onnx").embed(clip, sr=16000), Embedder(out, backend="onnx").embed(clip, sr=16000)
    assert a.shape == b.shape == (32,) and not np.allclose(a, b)


def test_train_speed_builds_the_reference_trainer_with_the_same_overrides(tmp_path):
    """benchmarks/train_speed.py --ref: the old trainer gets --set too, or its samples/s are counted at the wrong batch."""
    import importlib.util
    from pathlib import Path

    from audioembed.train.loop import Trainer
    from audioembed.train.settings import TrainSettings

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"
    spec = importlib.util.spec_from_file_location("train_speed", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cache = bench.fake_cache(tmp_path, clips=8, frames=200)
    trainers = bench.make_trainers({"batch_size": 4, "negatives": "none", "channels": 8, "dim": 16,
                                    "proj_hidden": 32, "proj_dim": 8}, cache, "cpu", (Trainer, TrainSettings))
    assert set(trainers) == {"current", "ref"}
    for trainer in trainers.values():
        assert trainer.s.batch_size == 4 and trainer.s.negatives == () and trainer.s.channels == 8
    # --vs: the current code again with more overrides on top (e.g. the other precision), the shared ones kept
    trainers = bench.make_trainers({"batch_size": 4, "negatives": "none", "channels": 8, "dim": 16, "proj_hidden": 32,
                                    "proj_dim": 8, "precision": "float32"}, cache, "cpu", vs={"precision": "bfloat16"})
    assert set(trainers) == {"current", "vs"}
    assert trainers["current"].precision == "float32" and trainers["vs"].precision == "bfloat16"
    assert trainers["vs"].s.batch_size == 4 and trainers["vs"].s.channels == 8
    rates = bench.measure(trainers, 4, warmup=0, steps=1, rounds=2)
    assert set(rates) == {"current", "vs"} and all(len(r) == 2 and min(r) > 0 for r in rates.values())


def test_statistics_read_back_later_are_the_floats_a_step_returns_at_once(cache):
    """fit reads a GPU step's statistics back only at log rows (no wait per step): same numbers."""
    from audioembed.train.history import read_stats

    now = _trainer(cache, steps=3, neg_candidates=2)
    at_once = [now.train_step() for _ in range(3)]
    later = _trainer(cache, steps=3, neg_candidates=2)  # after: dropout draws from torch's global generator
    pending = [later.train_step(readback=False) for _ in range(3)]
    assert all(isinstance(row["loss"], torch.Tensor) for row in pending)
    assert read_stats(pending) == at_once
    assert list(at_once[0]) == ["loss_pos", "cos_pos", "loss_neg", "cos_neg", "cos_hard", "loss", "lr"]
    assert at_once[0]["cos_pos"] == 1 - at_once[0]["loss_pos"] / 4


def test_precision_auto_is_bfloat16_only_where_the_hardware_has_it(cache, monkeypatch):
    """On an AVX2-only CPU bfloat16 is emulated (a step 7x slower than float32): auto must pick float32 there,
    bfloat16 where it is native, and an explicit bfloat16 on such a CPU must warn."""
    from audioembed.train import precision

    assert TrainSettings().precision == "auto"
    x, w = torch.randn(4, 8), torch.randn(8, 8)
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(precision, "native_bfloat16", lambda device, native=native: native)
        logged = []
        t = Trainer(TrainSettings(batch_size=4, dim=32, steps=2), cache, "m", log=logged.append)
        assert t.precision == ("bfloat16" if native else "float32") and not logged
        with t.autocast():
            assert torch.nn.functional.linear(x, w).dtype == expected
        t = Trainer(TrainSettings(batch_size=4, dim=32, steps=2, precision="bfloat16"), cache, "m", log=logged.append)
        assert t.precision == "bfloat16" and bool(logged) is not native
        with t.autocast():
            assert torch.nn.functional.linear(x, w).dtype == torch.bfloat16
    assert "about 7x slower" in logged[0] and "precision auto" in logged[0]
    t = Trainer(TrainSettings(batch_size=4, dim=32, steps=2, precision="float32"), cache, "m", log=logged.append)
    with t.autocast():
        assert torch.nn.functional.linear(x, w).dtype == torch.float32
    with pytest.raises(TrainingError, match="auto"):
        TrainSettings(precision="fp16")


def test_native_bfloat16_reads_the_cpu_capabilities(monkeypatch):
    from audioembed.train import precision

    caps = {"avx2": True, "avx512_bf16": False, "amx_bf16": False}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    assert precision.native_bfloat16("cpu") is False
    caps["avx512_bf16"] = True
    assert precision.native_bfloat16("cpu") is True
    caps.update(avx512_bf16=False, amx_bf16=True)
    assert precision.native_bfloat16("cpu") is True


def test_native_bfloat16_on_a_gpu_does_not_count_emulation(monkeypatch):
    """torch's is_bf16_supported() says True for pre-Ampere GPUs that only emulate it: ask without emulation."""
    from audioembed.train import precision

    asked = []

    def emulating_gpu(including_emulation=True):  # a V100 or T4: bfloat16 only through emulation
        asked.append(including_emulation)
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulating_gpu)
    assert precision.native_bfloat16("cuda:0") is False and asked == [False]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision.native_bfloat16("cuda") is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.native_bfloat16("cuda") is False


def test_start_from_exported_weights_goes_on_at_its_step_and_is_recorded(cache, tmp_path):
    """A lost checkpoint: the run goes on from a snapshot's encoder at the snapshot's step; what an export does
    not hold (projector, predictor, optimizer, bank) starts anew; the record survives a checkpoint and reaches
    config.json and the card."""
    from audioembed import card

    first = _trainer(cache, steps=6, neg_candidates=2)
    first.fit(tmp_path / "first.pt", stop_at_step=2)
    first.export(tmp_path / "snap", {})
    snap_cfg = ModelConfig.load(tmp_path / "snap" / "config.json")
    fresh = _trainer(cache, steps=6, neg_candidates=2)
    t = _trainer(cache, steps=6, neg_candidates=2)
    t.start_from(tmp_path / "snap", snap_cfg, step=2, name="snap")
    assert t.step == 2 and t.init["step"] == 2 and t.init["its_steps"] == 2 and t.init["model"] == "snap"
    for k, v in first.online.encoder.state_dict().items():
        assert torch.equal(t.online.encoder.state_dict()[k], v), k
        assert torch.equal(t.target.encoder.state_dict()[k], v), k
    for k, v in fresh.online.projector.state_dict().items():  # not in the export: as a new run has it
        assert torch.equal(t.online.projector.state_dict()[k], v), k
    assert not torch.equal(t.gen.get_state(), fresh.gen.get_state())  # no replay of the first steps' crops
    assert t.fit(tmp_path / "go.pt", stop_at_step=4) is False
    again = _trainer(cache, steps=6, neg_candidates=2)
    again.load(tmp_path / "go.pt")
    assert again.init == t.init and again.step == 4
    again.fit(tmp_path / "go.pt")
    cfg = again.export(tmp_path / "out", {})
    train = cfg.extra["training"]
    assert train["init_from"]["step"] == 2 and train["samples"] == 6 * TINY["batch_size"]
    assert train["init_from"]["sha256"] == snap_cfg.sha256["model.safetensors"]
    assert train["samples_per_s"] == pytest.approx(4 * TINY["batch_size"] / again.elapsed, rel=0.01)  # its own 4 steps
    text = card.body(cfg)
    assert "Started from the encoder weights of `snap`" in text and "at step 2" in text


def test_start_from_refuses_other_architectures_frontends_and_a_step_past_the_end(cache, tmp_path):
    from audioembed.errors import ModelError

    small = _trainer(cache, steps=4)
    small.export(tmp_path / "snap", {})
    snap_cfg = ModelConfig.load(tmp_path / "snap" / "config.json")
    wide = _trainer(cache, steps=4, dim=48)
    with pytest.raises(ModelError, match=r"model\.safetensors: the weights do not match this run's encoder"):
        wide.start_from(tmp_path / "snap", snap_cfg, name="snap")
    import dataclasses

    with pytest.raises(ModelError, match="snap: made with f_max=8000"):
        _trainer(cache, steps=4).start_from(tmp_path / "snap", dataclasses.replace(snap_cfg, f_max=8000.0), name="snap")
    with pytest.raises(TrainingError, match="start step 4 is not before the run's last step"):
        _trainer(cache, steps=4).start_from(tmp_path / "snap", snap_cfg, step=4, name="snap")


def test_start_from_refuses_a_model_read_out_otherwise_though_its_shapes_fit(cache, tmp_path):
    """A stacked model's MLP (32 out of 96) has the shapes of a 32-d MLP readout's: loading it there would silently
    train another network than the one asked for."""
    from audioembed.errors import ModelError

    _trainer(cache, steps=4, dim=96, readout="stacked").export(tmp_path / "st", {})
    cfg = ModelConfig.load(tmp_path / "st" / "config.json")
    assert (cfg.readout, cfg.mlp_out) == ("stacked", 32)
    with pytest.raises(ModelError, match="st: made with dim=96, this run's encoder has 32; leave the architecture"):
        _trainer(cache, steps=4).start_from(tmp_path / "st", cfg, name="st")
    _trainer(cache, steps=4, dim=96, readout="stacked").start_from(tmp_path / "st", cfg, name="st")


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_cli_init_from_records_the_folder_by_name_and_checks_its_flags(audio_dir, tmp_path):
    from typer.testing import CliRunner

    from audioembed.cli import app

    runner = CliRunner()
    base = ["pretrain", str(audio_dir), "--cache-dir", str(tmp_path / "cache"), "--batch-size", "4", "--threads", "1"]
    tiny = ["--config", _config(tmp_path)]
    r = runner.invoke(app, [*base, *tiny, "--steps", "2", "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    at_step_2 = ["--config", _config(tmp_path, init_step=2)]  # init_step: a config-file key (a lost run's rescue)
    r = runner.invoke(app, [*base, *at_step_2, "--steps", "4", "-o", str(tmp_path / "b"), "--init-from", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "started from a's encoder at step 2" in r.output
    rec = record.load(tmp_path / "b").to_dict()
    assert rec["training"]["init_from"]["model"] == "a" and rec["training"]["steps"] == 4
    assert str(tmp_path) not in (tmp_path / "b" / "training.json").read_text() + (tmp_path / "b" / "README.md").read_text()
    r = runner.invoke(app, [*base, *at_step_2, "--steps", "4", "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and "init_step goes with --init-from" in r.output
    r = runner.invoke(app, [*base, *tiny, "--steps", "4", "-o", str(tmp_path / "b"), "--resume", "--init-from", str(tmp_path / "a")])
    assert r.exit_code == 2 and "pass one" in r.output
    r = runner.invoke(app, [*base, *tiny, "--steps", "4", "-o", str(tmp_path / "d"), "--init-from", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "--init-from" in r.output and "not a model folder" in r.output
    # the model's architecture is the run's unless set: a stacked model trained further stays stacked
    r = runner.invoke(app, [*base, "--config", _config(tmp_path, dim=544, readout="stacked"), "--steps", "2", "-o", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*base, "--steps", "2", "-o", str(tmp_path / "s2"), "--init-from", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert (ModelConfig.load(tmp_path / "s2" / "config.json").readout, ModelConfig.load(tmp_path / "s2" / "config.json").dim) == ("stacked", 544)


# -- round 3 (issues 40, 41, 42): input checks, export, BYOL maths ---------------------------------

def _pretrain(args, **kw):
    from typer.testing import CliRunner

    from audioembed.cli import app

    return CliRunner().invoke(app, ["pretrain", *map(str, args)], **kw)


def _one_error_line(result) -> str:
    """The command failed with exit 2 and one `error:` line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    return line


@pytest.mark.parametrize("flags, message", [
    (["--steps", "-5"], "steps must be >= 0"),
    (["--epochs", "nan"], "epochs must be a finite number"),
    (["--epochs", "0"], "epochs must be > 0"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr", "-1e-3"], "lr must be > 0"),
    ({"lr_after": math.inf}, "lr_after must be a finite number"),
    ({"neg_lambda": math.nan}, "neg_lambda must be a finite number"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--stop-after", "nan"], "--stop-after must be minutes >= 0"),
])
def test_pretrain_refuses_bad_numbers_before_any_work(tmp_path, flags, message):
    """`--steps -5` exported an untrained model and exited 0; NaNs gave tracebacks."""
    if isinstance(flags, dict):  # a setting of the --config file
        flags = ["--config", _config(tmp_path, **flags)]
    r = _pretrain([tmp_path / "nowhere", "-o", tmp_path / "m", "--cache-dir", tmp_path / "c", *flags])
    assert message in _one_error_line(r)
    assert not (tmp_path / "m").exists() and not (tmp_path / "c").exists()


def test_settings_check_types_and_ranges_from_a_config_file(tmp_path):
    path = tmp_path / "s.json"
    for text, message in [('{"steps": "many"}', "steps must be an integer"), ('{"steps": 2.5}', "steps must be an integer"),
                          ('{"lr": true}', "lr must be a number"), ('{"ema": 1.5}', r"ema must be a decay in \[0, 1\]"),
                          ('{"batch_size": 1}', "batch_size must be >= 2")]:
        path.write_text(text)
        with pytest.raises(TrainingError, match=message):
            TrainSettings.from_file(path)
    s = TrainSettings(steps=0, epochs=2, lr=3e-4, lr_after=1e-5, ema=1.0, neg_repr_margin=0.5)  # ints where floats go
    assert (s.epochs, s.lr_after, s.ema) == (2, 1e-5, 1.0)


def test_resume_refuses_truncated_incomplete_and_foreign_checkpoints_before_a_step(audio_dir, cache, tmp_path):
    """Pickles were already refused; a truncated or key-missing checkpoint gave a traceback."""
    t = _trainer(cache, steps=4)
    t.save(tmp_path / "good.pt")
    whole = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "short.pt").write_bytes(whole[: len(whole) // 2])
    torch.save({"step": 3, "online": {}}, tmp_path / "partial.pt")
    _trainer(cache, steps=4, dim=64).save(tmp_path / "wide.pt")
    fresh = _trainer(cache, steps=4)
    before = _state(fresh)
    with pytest.raises(TrainingError, match=r"short\.pt: not a readable checkpoint .*delete it to start over"):
        fresh.load(tmp_path / "short.pt")
    with pytest.raises(TrainingError, match=r"partial\.pt: not a complete checkpoint \(missing elapsed, history, world"):
        fresh.load(tmp_path / "partial.pt")
    with pytest.raises(TrainingError, match=r"wide\.pt: does not match this run's settings"):
        fresh.load(tmp_path / "wide.pt")
    fresh.load(tmp_path / "good.pt")  # the trainer is still usable
    assert fresh.step == 0 and all(torch.equal(before[k], v) for k, v in _state(fresh).items())

    base = [audio_dir, "-o", tmp_path / "m", "--cache-dir", tmp_path / "c", "--steps", "2", "--batch-size", "4",
            "--threads", "1", "--resume"]
    for name, message in [("short.pt", "not a readable checkpoint"), ("partial.pt", "not a complete checkpoint")]:
        line = _one_error_line(_pretrain([*base, "--config", _config(tmp_path, checkpoint=str(tmp_path / name))]))
        assert str(tmp_path / name) in line and message in line
    assert not (tmp_path / "m").exists()


def test_pretrain_refuses_a_silent_corpus(tmp_path):
    """All-silent audio gave norm_std 1e-6 and a model whose embeddings were ~1.6e5 in size."""
    for i in range(3):
        sf.write(tmp_path / f"quiet{i}.wav", np.zeros(16000, np.float32), 16000)
    r = _pretrain([tmp_path, "-o", tmp_path / "m", "--cache-dir", tmp_path / "c", "--steps", "2", "--batch-size", "4",
                   "--config", _config(tmp_path), "--threads", "1"])
    line = _one_error_line(r)
    assert f"{tmp_path}: the audio is silent (log-mel std" in line and "3 clips" in line
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()


@pytest.mark.parametrize("module, name", [("onnx", "onnx"), ("safetensors.torch", "safetensors")])
def test_pretrain_checks_what_export_needs_before_the_first_step(audio_dir, tmp_path, monkeypatch, module, name):
    """Without onnx a run trained to the end, then crashed at export with a 119-line traceback."""
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # `import onnx` now raises ImportError
    args = [audio_dir, "-o", tmp_path / "m", "--cache-dir", tmp_path / "c", "--steps", "2", "--batch-size", "4",
            "--config", _config(tmp_path)]
    line = _one_error_line(_pretrain(args))
    assert f"pretrain needs {name} " in line and 'pip install ".[train]"' in line
    assert not (tmp_path / "c").exists() and not (tmp_path / "m").exists()  # nothing decoded, nothing trained
    r = _pretrain([*args, "--cache-only"])  # the cache needs torch only
    assert r.exit_code == 0, r.output


def test_exported_files_have_the_umask_mode_like_the_others(cache, tmp_path):
    """safetensors' save_file wrote model.safetensors 0600 while the other files were 0644."""
    from audioembed.nn.export import save_model_folder

    old = os.umask(0o022)
    try:
        t = _trainer(cache, steps=1)
        t.train_step()
        t.export(tmp_path / "m", {})
        os.umask(0o027)
        save_model_folder(t.online.encoder, tmp_path / "strict", onnx=False)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "model.onnx", "README.md"} <= set(modes) and set(modes.values()) == {0o644}
    assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "strict").iterdir()}["model.safetensors"] == 0o640
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]  # no temp file left


def test_pretrain_help_describes_every_settings_flag_with_its_default():
    """The flags are built from TrainSettings' fields marked flag=True: the field's help, then its default."""
    import dataclasses

    import typer.main

    from audioembed.cli import app

    command = typer.main.get_command(app).commands["pretrain"]
    flagged = {f.name: f.metadata["help"] for f in dataclasses.fields(TrainSettings) if f.metadata["flag"]}
    checked = 0
    for param in command.params:
        if param.name not in {f.name for f in dataclasses.fields(TrainSettings)}:
            continue
        value = getattr(TrainSettings(), param.name)
        shown = ("--no-balance-folders" if param.name == "balance_folders" else ",".join(value) if isinstance(value, tuple)
                 else "off" if value is None else str(value))
        assert param.help == f"{flagged[param.name]} (default: {shown})", param.name
        checked += 1
    assert checked == len(flagged) >= 8
    helps = {p.name: p.help for p in command.params}
    assert helps["lr"].startswith("Learning rate") and "(default: 0.0001)" in helps["lr"]
    assert helps["seed"].startswith("Random seed") and "(default: 42)" in helps["seed"]
    # `pretrain --help` stays short (issue 38): at most 18 options, --help and --device counted
    options = [p for p in command.get_params(command.context_class(command)) if p.param_type_name == "option"]
    assert len(options) <= 18 and {"--help", "--device", "--config", "--resume"} <= {o for p in options for o in p.opts}


def test_ema_update_moves_each_weight_exactly_one_minus_decay_of_the_way():
    """A swapped decay (the target moving 99 % a step) passed every test."""
    from audioembed.train.byol import Online, Target

    torch.manual_seed(0)
    online = Online(ModelConfig(dim=32, channels=8), 64, 16)
    target = Target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
        for b in online.buffers():
            if b.is_floating_point():
                b.add_(1.0)
    pairs = [(online.encoder, target.encoder), (online.projector, target.projector)]
    t0 = [p.clone() for _, mine in pairs for p in mine.parameters()]
    o = [p.clone() for theirs, _ in pairs for p in theirs.parameters()]
    target.update(online, 0.9)
    t1 = [p for _, mine in pairs for p in mine.parameters()]
    assert len(t1) == len(o) > 10
    for a, b, c in zip(t0, o, t1):
        torch.testing.assert_close(c, a + 0.1 * (b - a), rtol=0, atol=1e-6)
        assert not torch.allclose(a, b)  # each weight had somewhere to go
    for theirs, mine in pairs:  # batch-norm statistics are copied, not averaged
        assert all(torch.equal(x, y) for x, y in zip(mine.buffers(), theirs.buffers()))
    assert all(not p.requires_grad for p in target.parameters())


def test_a_training_step_updates_the_target_with_the_settings_decay(cache):
    t = _trainer(cache, steps=2, ema=0.75, negatives="none")
    t.train_step()
    before = [p.clone() for p in t.target.parameters()]
    t.train_step()
    online = dict(t.online.named_parameters())
    for (name, after), prev in zip(t.target.named_parameters(), before):
        torch.testing.assert_close(after, prev + 0.25 * (online[name] - prev), rtol=0, atol=1e-6)


def test_byol_loss_is_two_minus_two_cosine_and_the_hinge_is_relu_of_cosine_minus_margin():
    from audioembed.train.byol import byol_loss, negative_loss

    p = torch.tensor([[1.0, 2.0, -3.0], [0.5, 0.0, 0.0], [1.0, 1.0, 0.0]])
    assert byol_loss(p, p).tolist() == pytest.approx([0, 0, 0], abs=1e-6)
    assert byol_loss(p, -p).tolist() == pytest.approx([4, 4, 4], abs=1e-6)
    assert byol_loss(p, 7.0 * p).tolist() == pytest.approx([0, 0, 0], abs=1e-6)  # scale does not count
    other = torch.tensor([[2.0, -1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])  # orthogonal, orthogonal, 45 degrees
    assert byol_loss(p, other).tolist() == pytest.approx([2, 2, 2 - math.sqrt(2)], abs=1e-6)
    z = p.clone().requires_grad_(True)
    q = other.clone().requires_grad_(True)
    byol_loss(q, z).sum().backward()
    assert z.grad is None and q.grad is not None  # the target side is never trained by the loss
    hinge, cos = negative_loss(torch.cat([p, -p, other]), torch.cat([p, p, p]), margin=0.25)
    assert cos.tolist() == pytest.approx([1] * 3 + [-1] * 3 + [0, 0, 1 / math.sqrt(2)], abs=1e-6)
    assert hinge.tolist() == pytest.approx([0.75] * 3 + [0] * 5 + [1 / math.sqrt(2) - 0.25], abs=1e-6)


def test_a_step_descends_the_byol_loss_on_a_fixed_batch(cache):
    """The same views and dropout draws every step: the positive loss must fall step after step (a loss with its
    sign flipped climbs). Deterministic, unlike a comparison of noisy running means."""
    t = _trainer(cache, steps=6, lr=1e-3, ema=1.0, negatives="none")
    g = torch.Generator().manual_seed(3)
    views = (torch.randn(8, 64, 96, generator=g), torch.randn(8, 64, 96, generator=g))
    t.views = lambda x, gen, settings: tuple(v.clone() for v in views)
    losses = []
    for _ in range(6):
        torch.manual_seed(0)
        losses.append(t.train_step()["loss_pos"])
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.05


# -- issue 38: the settings written once; most of them a --config file's keys -----------------------------------

EVERY_SETTING = dict(  # a value other than the default for every field: a new field must be added here
    steps=3, epochs=2.5, batch_size=6, lr=5e-5, lr_decay_from=0.5, lr_after=1e-5, weight_decay=0.01, ema=0.9, seed=7,
    dim=48, channels=16, n_blocks=2, mlp_hidden=128, readout="stacked", proj_hidden=96, proj_dim=24, crop_frames=64,
    mixup_ratio=0.2, mixup_bank=32, rrc_virtual_scale=[1.0, 1.2], rrc_freq_scale=[1.0, 1.0], freq_crop_until=0.5,
    rrc_time_scale=[0.8, 1.2], fader_gain=0.5, negatives=["freq_roll", "time_flip"], neg_segments=3, neg_lambda=0.5,
    neg_margin=0.3, neg_space="projection", neg_repr_margin=0.8, neg_candidates=2, neg_shift=[1, 3], neg_semitones=[2, 4],
    precision="float32", balance_folders=True, log_every=5, ckpt_every=50, snapshot_every=10, workers=1)


def _settings_seen(monkeypatch) -> dict:
    """Stop `pretrain` where it first uses its settings (the cache), keeping them: no audio decoded, nothing trained."""
    seen = {}

    def stop(data_dir, cache_root, cfg, settings, dist, log):
        seen["settings"] = settings
        raise SystemExit(0)

    monkeypatch.setattr("audioembed.train.command._cache_on_rank0", stop)
    return seen


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_every_setting_is_a_config_file_key(tmp_path, monkeypatch, suffix):
    """Flags are a few; every field of TrainSettings is reachable through --config, JSON or YAML alike."""
    import dataclasses

    import yaml

    assert set(EVERY_SETTING) == {f.name for f in dataclasses.fields(TrainSettings)}
    defaults = TrainSettings().to_dict()
    assert all(EVERY_SETTING[k] != defaults[k] for k in EVERY_SETTING)
    path = tmp_path / f"every{suffix}"
    path.write_text(json.dumps(EVERY_SETTING) if suffix == ".json" else yaml.safe_dump(EVERY_SETTING).replace("5.0e-05", "5e-5"))
    seen = _settings_seen(monkeypatch)
    r = _pretrain([tmp_path, "-o", tmp_path / "m", "--config", path])
    assert r.exit_code == 0, r.output
    assert seen["settings"].to_dict() == EVERY_SETTING
    assert TrainSettings.from_file(path) == seen["settings"]  # and back through a file: the checkpoint's record
    (tmp_path / "again.json").write_text(json.dumps(seen["settings"].to_dict()))
    assert TrainSettings.from_file(tmp_path / "again.json") == seen["settings"]


def test_flags_given_override_the_config_file(tmp_path, monkeypatch):
    from audioembed.train.settings import FREQ_STRATEGIES

    seen = _settings_seen(monkeypatch)
    config = _config(tmp_path, steps=99, lr=1e-3, balance_folders=True, negatives="none", neg_lambda=0.5, seed=7)
    r = _pretrain([tmp_path, "-o", tmp_path / "m", "--config", config, "--steps", "3", "--no-balance-folders",
                   "--negatives", "freq", "--seed", "0"])
    assert r.exit_code == 0, r.output
    s = seen["settings"]
    assert (s.steps, s.lr, s.balance_folders, s.negatives, s.neg_lambda, s.seed, s.dim) == (3, 1e-3, False, FREQ_STRATEGIES, 0.5, 0, 32)
    r = _pretrain([tmp_path, "-o", tmp_path / "m", "--config", config])  # the file's, where no flag is given
    assert r.exit_code == 0 and (seen["settings"].steps, seen["settings"].balance_folders, seen["settings"].negatives) == (99, True, ())
    bad = _config(tmp_path, batch_size=1)  # a flag given replaces the file's value before it is checked
    assert "batch_size must be >= 2" in _one_error_line(_pretrain([tmp_path, "-o", tmp_path / "m", "--config", bad]))
    assert _pretrain([tmp_path, "-o", tmp_path / "m", "--config", bad, "--batch-size", "4"]).exit_code == 0


def test_a_config_file_with_an_unknown_key_is_one_error_line_naming_it_and_the_file(tmp_path):
    for name, text in [("typo.json", '{"dim": 32, "neg_lamda": 0.5}'), ("typo.yaml", "dim: 32\nneg_lamda: 0.5\n")]:
        (tmp_path / name).write_text(text)
        line = _one_error_line(_pretrain([tmp_path / "nowhere", "-o", tmp_path / "m", "--config", tmp_path / name]))
        assert f"{tmp_path / name}: unknown setting 'neg_lamda' (did you mean 'neg_lambda'?)" in line
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text('{"dim": ')
    for name, message in [("list.json", "one mapping of settings"), ("broken.json", "not a JSON file"), ("none.json", "cannot read")]:
        assert message in _one_error_line(_pretrain([tmp_path / "nowhere", "-o", tmp_path / "m", "--config", tmp_path / name]))
    (tmp_path / "step.json").write_text('{"init_step": -1}')
    assert "init_step must be an integer >= 0" in _one_error_line(
        _pretrain([tmp_path / "nowhere", "-o", tmp_path / "m", "--config", tmp_path / "step.json"]))
    assert not (tmp_path / "m").exists()


def test_the_training_page_lists_every_config_key():
    """docs/training.md's table is settings_table(): a setting's help is written once, in its field."""
    from pathlib import Path

    from audioembed.train.settings import settings_table

    page = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    assert settings_table() in page, "paste audioembed.train.settings.settings_table() into docs/training.md"
