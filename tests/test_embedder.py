"""The Embedder: shapes, exactness of windowing and batching, backend parity, determinism."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from audioembed import Embedder, FrameEmbeddings
from audioembed import windows as win
from audioembed.errors import AudioError, BackendError

import reference
from conftest import NATIVE_BF16_ONLY, native_bf16, noisy, tone


@pytest.fixture(scope="module")
def onnx_embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, backend="onnx")


@pytest.fixture(scope="module")
def torch_embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, backend="torch")


def full_pass_frames(model, x: np.ndarray) -> np.ndarray:
    """Reference: one forward pass over the whole centre-padded clip."""
    padded = np.pad(x, model.cfg.n_fft // 2, mode="reflect")
    with torch.no_grad():
        return model(torch.from_numpy(padded)[None], torch.tensor([len(x) // model.cfg.hop_length + 1]))[0].numpy()


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_vectors_and_frames_equal_the_independent_numpy_reference(tiny_model_dir, backend):
    """Frontend, normalisation, encoder, windowing and pooling against tests/reference.py, which shares
    no code with the package: a bug in any of them shows up here instead of cancelling out."""
    e = Embedder(tiny_model_dir, backend=backend)
    for seconds in (0.01, 0.2, 1.0, 12.5):  # shorter than 80 ms (zero-padded) to more than one window
        x = noisy(seconds=seconds, seed=7)
        v = e.embed(x, sr=16000)
        assert v.shape == (32,) and v.dtype == np.float32
        np.testing.assert_allclose(v, reference.embedding(tiny_model_dir, x), rtol=0, atol=1e-5, err_msg=str(seconds))
    x = noisy(seconds=3.7, seed=8)
    np.testing.assert_allclose(e.embed_frames(x, sr=16000).embeddings, reference.frames(tiny_model_dir, x), rtol=0, atol=1e-5)


def test_list_input_gives_a_matrix_in_input_order(onnx_embedder):
    clips = [noisy(seconds=s, seed=i) for i, s in enumerate((0.5, 2.0, 1.0))]
    batch = onnx_embedder.embed(clips, sr=16000)
    assert batch.shape == (3, 32)
    for row, clip in zip(batch, clips):
        np.testing.assert_allclose(row, onnx_embedder.embed(clip, sr=16000), atol=1e-5)
    assert onnx_embedder.embed([], sr=16000).shape == (0, 32)


@pytest.mark.parametrize("seconds", [0.05, 1.23, 10.24, 10.31, 21.0, 33.3])
def test_windowed_frames_equal_a_single_full_pass(torch_embedder, tiny_torch_model, seconds):
    x = noisy(seconds=seconds, seed=3)
    if len(x) < win.min_samples(tiny_torch_model.cfg):
        x = np.concatenate([x, np.zeros(win.min_samples(tiny_torch_model.cfg) - len(x), np.float32)])
    ref = full_pass_frames(tiny_torch_model, x)
    got = torch_embedder.embed_frames(x, sr=16000)
    assert got.embeddings.shape == ref.shape
    np.testing.assert_allclose(got.embeddings, ref, atol=1e-5)
    np.testing.assert_allclose(torch_embedder.embed(x, sr=16000), ref.max(0) + ref.mean(0), atol=1e-5)


def test_window_count_and_memory_are_bounded_by_the_window(tiny_torch_model):
    cfg = tiny_torch_model.cfg
    x = np.zeros(16000 * 100, np.float32)
    blocks = (x[i : i + 7777] for i in range(0, len(x), 7777))
    ws = list(win.cut(blocks, cfg))
    n_outputs = (len(x) // cfg.hop_length + 1) // cfg.time_reduction  # centred log-mel frames // 2**n_blocks
    assert len(ws) == int(np.ceil(n_outputs / win.WINDOW_FRAMES))
    assert max(len(w.wave) for w in ws) <= (win.WINDOW_FRAMES * 8 + 2 * win.context_frames(cfg)) * 160 + cfg.n_fft
    kept = [w.keep for w in ws]
    assert kept[0][0] == 0 and kept[-1][1] == n_outputs
    assert all(a[1] == b[0] for a, b in zip(kept, kept[1:]))


@pytest.mark.parametrize("backend, precision", [
    ("onnx", "f32"), ("torch", "f32"), ("openvino", "f32"),
    pytest.param("openvino", "bf16", marks=pytest.mark.skipif(not native_bf16(), reason=NATIVE_BF16_ONLY)),
])
def test_padded_batches_equal_one_item_at_a_time(tiny_model_dir, backend, precision):
    clips = [noisy(seconds=s, seed=i) for i, s in enumerate((0.3, 4.0, 12.5, 1.1, 0.9))]
    kw = dict(backend=backend, precision=precision)
    batched = Embedder(tiny_model_dir, batch_size=8, **kw).embed(clips, sr=16000)
    single = Embedder(tiny_model_dir, batch_size=1, num_workers=1, **kw).embed(clips, sr=16000)
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_torch_and_onnx_agree(onnx_embedder, torch_embedder):
    clips = [noisy(seconds=s, seed=i) for i, s in enumerate((0.5, 3.0, 11.0))]
    np.testing.assert_allclose(onnx_embedder.embed(clips, sr=16000), torch_embedder.embed(clips, sr=16000), atol=1e-4)
    f1, f2 = onnx_embedder.embed_frames(clips[1], sr=16000), torch_embedder.embed_frames(clips[1], sr=16000)
    np.testing.assert_allclose(f1.embeddings, f2.embeddings, atol=1e-4)


def test_same_input_same_vector_run_after_run(tiny_model_dir, tmp_path):
    import soundfile as sf

    path = tmp_path / "clip.flac"
    sf.write(path, noisy(44100, 3.0), 44100)
    first = Embedder(tiny_model_dir, backend="onnx").embed(path)
    for _ in range(3):
        np.testing.assert_array_equal(Embedder(tiny_model_dir, backend="onnx").embed(path), first)
    np.testing.assert_allclose(first, Embedder(tiny_model_dir, backend="onnx").embed(noisy(44100, 3.0), sr=44100), atol=1e-6)


def test_frames_have_hear_style_timestamps(onnx_embedder):
    frames = onnx_embedder.embed_frames(tone(440, seconds=2.0), sr=16000)
    assert isinstance(frames, FrameEmbeddings)
    assert frames.embeddings.shape == (25, 32)
    np.testing.assert_allclose(frames.embeddings, reference.frames(onnx_embedder.resolved.folder, tone(440, seconds=2.0)), atol=1e-5)
    np.testing.assert_allclose(frames.timestamps[:3], [35.0, 115.0, 195.0])
    assert np.all(np.diff(frames.timestamps) == 80.0)


def test_different_sounds_give_different_vectors(onnx_embedder):
    """Two sounds lie much further apart than one sound and its slight variations (gain, shift, other noise)."""

    def sound(freq: float, seed: int) -> np.ndarray:
        return tone(freq, seconds=2.0) + 0.05 * np.random.default_rng(seed).standard_normal(32000).astype(np.float32)

    def distance(u: np.ndarray, v: np.ndarray) -> float:
        return 1.0 - float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    x = sound(300, 0)
    a, other, *variants = onnx_embedder.embed([x, sound(3000, 1), 0.8 * x, np.roll(x, 37), sound(300, 2)], sr=16000)
    closest_other = distance(a, other)
    farthest_variant = max(distance(a, v) for v in variants)
    assert closest_other > 5 * farthest_variant, (closest_other, farthest_variant)


def test_bad_input_in_a_list_raises_naming_it(onnx_embedder, tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="corrupt.wav"):
        onnx_embedder.embed([tone(440), bad], sr=16000)
    with pytest.raises(AudioError, match="NaN"):
        onnx_embedder.embed(np.full(1000, np.nan, np.float32), sr=16000)


def test_iter_results_reports_errors_and_keeps_going(onnx_embedder, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"xx")
    inputs = [tone(440), bad, noisy(seed=5), tone(880)]
    results = {r.index: r for r in onnx_embedder.iter_results(inputs, sr=16000)}
    assert sorted(results) == [0, 1, 2, 3]
    assert results[1].embedding is None and "bad.wav" in str(results[1].error) and str(bad) in results[1].source
    for i in (0, 2, 3):  # each result is its own input's vector, not a neighbour's
        assert results[i].error is None
        np.testing.assert_allclose(results[i].embedding, onnx_embedder.embed(inputs[i], sr=16000), rtol=0, atol=1e-6)
    assert min(np.abs(results[i].embedding - results[j].embedding).max() for i, j in [(0, 2), (0, 3), (2, 3)]) > 1e-3


def test_the_package_exports_the_types_users_meet(onnx_embedder):
    import audioembed

    assert isinstance(onnx_embedder.config, audioembed.ModelConfig)
    assert all(isinstance(r, audioembed.Result) for r in onnx_embedder.iter_results([tone(440)], sr=16000))
    assert {"ModelConfig", "Result", "TrainingError"} <= set(audioembed.__all__)


def test_unknown_backend_and_device_errors(tiny_model_dir):
    with pytest.raises(BackendError, match="unknown backend"):
        Embedder(tiny_model_dir, backend="tensorflow")
    with pytest.raises(BackendError, match="CPU only"):
        Embedder(tiny_model_dir, backend="onnx", device="cuda")


def test_torch_asked_for_a_gpu_it_does_not_see_says_so(tiny_model_dir, monkeypatch):
    from audioembed.nn.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError, match="torch sees no CUDA GPU; use device='cpu'"):
        Embedder(tiny_model_dir, backend="torch", device="cuda")
    assert pick_device("auto") == "cpu" and pick_device("cpu") == "cpu"


def run_isolated(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_is_light():
    out = run_isolated(
        """
        import sys, audioembed
        print(sorted(m for m in ("torch", "onnxruntime", "openvino", "sklearn", "soundfile", "huggingface_hub") if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_onnx_path_works_without_torch(tiny_model_dir):
    out = run_isolated(
        f"""
        import sys, numpy as np
        sys.modules["torch"] = None  # any import of torch now fails
        from audioembed import Embedder
        from audioembed.backends import openvino
        openvino.bf16_native = lambda: False  # auto means ONNX Runtime here, whatever this CPU has
        e = Embedder({str(tiny_model_dir)!r})
        print(e.backend_name, e.embed(np.ones(16000, np.float32) * 0.1, sr=16000).shape)
        """
    )
    assert out.split() == ["onnx", "(32,)"]


def test_frames_arriving_out_of_order_are_stitched_in_place():
    from audioembed.embedder import _Accumulator

    frames = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    acc = _Accumulator(keep_frames=True)
    for start, stop in ((30, 40), (0, 10), (20, 30), (10, 20)):  # the last, shorter window often runs first
        acc.add(start, frames[start:stop])
    np.testing.assert_array_equal(acc.frames, frames)
    np.testing.assert_allclose(acc.pool.embedding(), frames.max(0) + frames.mean(0))


def test_the_streaming_pool_is_the_training_pool():
    """pooling.Pool (inference, a window at a time) and AudioEncoder.pool (training, a batch at once) agree."""
    import torch

    from audioembed.nn import AudioEncoder
    from audioembed.pooling import Pool

    frames = np.random.default_rng(0).standard_normal((2, 50, 8)).astype(np.float32)
    expected = AudioEncoder.pool(torch.from_numpy(frames)).numpy()
    for clip, want in zip(frames, expected):
        pool = Pool()
        for start, stop in ((30, 50), (0, 10), (10, 30)):  # windows finish out of order
            pool.add(clip[start:stop])
        assert pool.count == 50
        np.testing.assert_allclose(pool.embedding(), want, rtol=1e-6, atol=1e-6)


def test_queued_windows_do_not_pin_the_decode_buffer(tiny_torch_model):
    x = np.zeros(16000 * 40, np.float32)
    ws = list(win.cut((x[i : i + 160000] for i in range(0, len(x), 160000)), tiny_torch_model.cfg))
    assert all(w.wave.base is None for w in ws)


def test_auto_backend_is_onnx_on_a_cpu_even_with_torch_installed(tiny_model_dir):
    """torch is 3-7x slower than ONNX Runtime on a CPU: auto must not pick it just because it is importable
    (on a CPU without native bfloat16; with it, OpenVINO: tests/test_backend_openvino.py)."""
    out = run_isolated(
        f"""
        import sys
        from audioembed import Embedder, backends
        from audioembed.backends import openvino
        openvino.bf16_native = lambda: False
        assert backends.torch_available()
        e = Embedder({str(tiny_model_dir)!r})
        print(e.backend_name, "torch" in sys.modules)
        """
    )
    assert out.split() == ["onnx", "False"]  # and torch was not even imported to decide


def test_auto_backend_is_torch_when_it_sees_a_cuda_gpu(monkeypatch):
    from audioembed import backends

    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    assert backends.choose("auto") == "torch" and backends.choose("auto", "cpu") == "onnx"
    monkeypatch.setattr(backends, "cuda_available", lambda: False)
    assert backends.choose("auto") == "onnx" and backends.choose("auto", "cuda") == "torch"
    assert backends.choose("torch") == "torch" and backends.choose("onnx", "auto") == "onnx"


def test_frames_stream_to_a_file_equal_to_frames_in_memory(tiny_model_dir, tmp_path):
    """Windows finish out of order (batches are sorted by length): each lands at its own rows, none is held."""
    e = Embedder(tiny_model_dir, backend="onnx", batch_size=3, num_workers=2)
    clips = [noisy(seconds=47.3, seed=1), tone(440, seconds=0.5), noisy(seconds=23.0, seed=2)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    in_memory = e.embed_frames(clips, sr=16000)
    paths = {i: tmp_path / f"{i}.frames.npy" for i in range(4)}
    results = {r.index: r for r in e.iter_results([*clips, bad], sr=16000, frames=True, frames_to=paths.__getitem__)}
    for i, expected in enumerate(in_memory):
        got = results[i].frames
        assert got.file == paths[i] and isinstance(got.embeddings, np.memmap)
        np.testing.assert_array_equal(np.load(paths[i]), expected.embeddings)
        np.testing.assert_array_equal(got.timestamps, expected.timestamps)
    assert results[3].error is not None and not paths[3].exists(), "a failed input leaves no frames file"


def test_frames_are_held_in_memory_when_their_file_cannot_be_created(onnx_embedder, tmp_path):
    missing = tmp_path / "no-such-folder" / "x.frames.npy"
    [result] = onnx_embedder.iter_results([tone(440, seconds=3.0)], sr=16000, frames=True, frames_to=lambda i: missing)
    assert result.frames.file is None and result.frames.embeddings.shape == (37, onnx_embedder.dim)


def test_pooling_before_the_relu_trains_as_the_published_order():
    """The encoder max-pools before its ReLU (a 4x smaller map to rectify); forward values and every
    gradient must equal BYOL-A's order (conv, BN, ReLU, max-pool), in training mode, bit for bit."""
    from torch import nn

    from audioembed.config import ModelConfig
    from audioembed.nn import AudioEncoder
    from conftest import TINY

    torch.manual_seed(0)
    ours = AudioEncoder(ModelConfig(**TINY)).train()
    published = []
    for i in range(0, len(ours.features), 4):
        conv, bn, pool, relu = ours.features[i : i + 4]
        assert isinstance(pool, nn.MaxPool2d) and isinstance(relu, nn.ReLU)
        published += [conv, bn, nn.ReLU(), pool]
    published = nn.Sequential(*published)  # the same modules: the same weights, BN statistics updated twice
    x = torch.randn(6, 1, ours.cfg.n_mels, 40)
    a = ours.features(x)
    grads_a = torch.autograd.grad(a.square().sum(), list(ours.features.parameters()))
    b = published(x)
    grads_b = torch.autograd.grad(b.square().sum(), list(published.parameters()))
    assert torch.equal(a, b) and (a >= 0).all() and (a == 0).any()
    for ga, gb in zip(grads_a, grads_b):
        assert torch.equal(ga, gb)
