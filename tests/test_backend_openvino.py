"""The OpenVINO backend: what auto picks (bf16 hardware or not, the extra installed or not), bf16 only where the CPU
has it, bit-identical repeats per backend and precision, agreement with ONNX Runtime, the same refusals."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audioembed import Embedder, backends
from audioembed.backends import openvino as ov_backend
from audioembed.errors import BackendError, IntegrityError

from conftest import NATIVE_BF16_ONLY, native_bf16, noisy, tone

needs_openvino = pytest.mark.skipif(not backends.openvino_available(), reason="openvino is not installed")
needs_bf16 = pytest.mark.skipif(not native_bf16(), reason=NATIVE_BF16_ONLY)
CLIPS = (0.3, 2.77, 10.31, 13.0)  # seconds: one window, a last window of its own length, two windows


def clips():
    return [noisy(seconds=s, seed=i) for i, s in enumerate(CLIPS)]


@pytest.fixture
def hardware(monkeypatch):
    """hardware(openvino_installed, bf16): what backends.choose sees; torch sees no GPU."""
    find_spec = importlib.util.find_spec

    def set_hardware(installed: bool, bf16: bool) -> None:
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" and not installed
                            else find_spec(name, *a))
        monkeypatch.setattr(ov_backend, "bf16_native", lambda: bf16)
        monkeypatch.setattr(backends, "cuda_available", lambda: False)

    return set_hardware


@pytest.mark.parametrize("installed", [True, False])
@pytest.mark.parametrize("bf16", [True, False])
def test_auto_stays_onnx_float32_on_any_cpu(hardware, installed, bf16):
    """bf16 misses the accuracy bar on real audio (docs/cli.md): auto never picks it, with or without the extra."""
    hardware(installed, bf16)
    for device in ("auto", "cpu"):
        chosen = backends.choose("auto", device)
        assert (chosen, backends.choose_precision(chosen)) == ("onnx", "f32")
    if installed and bf16:  # asked for: OpenVINO in bfloat16
        assert backends.choose("auto", precision="bf16") == "openvino"
        assert backends.choose_precision("openvino", "bf16") == "bf16"


def test_a_gpu_still_means_torch_in_float32(hardware, monkeypatch):
    hardware(True, True)
    monkeypatch.setattr(backends, "cuda_available", lambda: True)
    assert backends.choose("auto") == "torch" and backends.choose_precision("torch") == "f32"
    assert backends.choose("auto", "cpu") == "onnx"


@needs_openvino
@pytest.mark.parametrize("bf16", [True, False])
def test_openvino_computes_float32_unless_bf16_is_asked_for(hardware, tiny_model_dir, bf16):
    hardware(True, bf16)
    e = Embedder(tiny_model_dir, backend="openvino")
    # float32, checked on the compiled model, not only on what we asked for (left unset, OpenVINO picks bf16 itself)
    assert e.precision == "f32" and "precision=f32" in repr(e) and "backend=openvino" in repr(e)
    assert str(e.backend.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"


@needs_openvino
@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="no /proc/cpuinfo: not Linux")
def test_bf16_detection_agrees_with_the_cpu_flags():
    """What OpenVINO reports against what the kernel says the CPU has (the bf16 tests skip where it says no)."""
    flags = set(" ".join(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split())
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert ov_backend.bf16_native()
    if not flags & {"avx512_bf16", "amx_bf16", "avx_ne_convert", "avx512_fp16"}:  # nothing bfloat16 can run on
        assert not ov_backend.bf16_native()


def test_bf16_on_a_cpu_without_it_is_a_clear_error(hardware, tiny_model_dir):
    hardware(True, False)
    for backend in ("openvino", "auto"):
        with pytest.raises(BackendError, match="precision='bf16' needs a CPU with native bfloat16"):
            Embedder(tiny_model_dir, backend=backend, precision="bf16")


def test_openvino_without_the_extra_says_how_to_install_it(hardware, tiny_model_dir):
    hardware(False, True)
    for backend, precision in (("openvino", "auto"), ("auto", "bf16")):
        with pytest.raises(BackendError, match=r'needs OpenVINO: pip install "\.\[openvino\]"'):
            Embedder(tiny_model_dir, backend=backend, precision=precision)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_precision_other_than_f32_on_onnx_or_torch_is_refused(tiny_model_dir, backend):
    with pytest.raises(BackendError, match=f"backend '{backend}' computes in float32 only .*needs backend='openvino'"):
        Embedder(tiny_model_dir, backend=backend, precision="bf16")
    assert Embedder(tiny_model_dir, backend=backend, precision="f32").precision == "f32"


@needs_openvino
def test_unknown_precision_and_a_gpu_are_refused(tiny_model_dir):
    with pytest.raises(BackendError, match="unknown precision 'fp16'"):
        Embedder(tiny_model_dir, backend="openvino", precision="fp16")
    with pytest.raises(BackendError, match="CPU only"):
        Embedder(tiny_model_dir, backend="openvino", device="cuda")


# torch on a CPU is left out: its frames differ by an ulp now and then from one call to the next (1-4 calls in 10
# with the tiny model here, at 1 or 2 threads), so it promises agreement to ~1e-7, not bits (docs/api.md).
SETTINGS = [
    ("onnx", "f32"),
    pytest.param("openvino", "f32", marks=needs_openvino),
    pytest.param("openvino", "bf16", marks=[needs_openvino, needs_bf16]),
]


@pytest.mark.parametrize("backend, precision", SETTINGS)
def test_repeat_runs_are_bit_identical_per_backend_and_precision(tiny_model_dir, backend, precision):
    first = Embedder(tiny_model_dir, backend=backend, precision=precision, num_threads=2)
    again = Embedder(tiny_model_dir, backend=backend, precision=precision, num_threads=2)
    vectors = first.embed(clips(), sr=16000)
    for e in (first, again, first):
        np.testing.assert_array_equal(e.embed(clips(), sr=16000), vectors)
        np.testing.assert_array_equal(e.embed_frames(clips()[2], sr=16000).embeddings,
                                      first.embed_frames(clips()[2], sr=16000).embeddings)


@needs_openvino
def test_openvino_f32_agrees_with_onnx_runtime(tiny_model_dir):
    ort = Embedder(tiny_model_dir, backend="onnx")
    ov = Embedder(tiny_model_dir, backend="openvino", precision="f32")
    np.testing.assert_allclose(ov.embed(clips(), sr=16000), ort.embed(clips(), sr=16000), rtol=1e-5, atol=1e-5)
    for x in clips():
        a, b = ov.embed_frames(x, sr=16000), ort.embed_frames(x, sr=16000)
        assert a.embeddings.shape == b.embeddings.shape
        np.testing.assert_allclose(a.embeddings, b.embeddings, rtol=1e-5, atol=1e-5)


@needs_openvino
def test_the_backend_gives_onnx_runtimes_frames_at_any_length(tiny_model_dir):
    """run() pads inputs to a grid of lengths and trims the output back: same shape, same numbers as ONNX Runtime."""
    ort, ov = (Embedder(tiny_model_dir, backend=b, precision="f32").backend for b in ("onnx", "openvino"))
    rng = np.random.default_rng(0)
    # from one output frame's log-mel frames (what windows.py's shortest window holds) to past a full window
    for n in (2144, 2500, 4000, 16000, 16160, 33333, 172384, 180000):
        wave = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
        n_frames = np.array([(n - 1024) // 160 + 1, max(1, (n - 1024) // 320)], np.int64)
        want, got = ort.run(wave, n_frames), ov.run(wave, n_frames)
        assert got.shape == want.shape, n
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=str(n))



@needs_openvino
def test_a_call_that_fails_inside_openvino_leaves_the_backend_working(tiny_model_dir, monkeypatch):
    """After a failed call, OpenVINO 2026.4 failed every later call of the compiled model: it is compiled anew."""
    backend = Embedder(tiny_model_dir, backend="openvino", precision="f32").backend
    wave = (0.1 * np.random.default_rng(0).standard_normal((1, 16000))).astype(np.float32)
    want = backend.run(wave, np.array([94]))
    with pytest.raises(ValueError, match="shorter than one log-mel frame"):
        backend.run(wave[:, :1000], np.array([1]))
    monkeypatch.setattr(backend, "padded_length", lambda n: n)  # unpadded, 2 log-mel frames fail in a max-pool
    with pytest.raises(RuntimeError, match="MaxPool"):
        backend.run(wave[:, :1184], np.array([2]))
    np.testing.assert_array_equal(backend.run(wave, np.array([94])), want)


@needs_openvino
def test_one_compiled_model_meets_few_shapes(tiny_model_dir, monkeypatch):
    """OpenVINO specialises kernels per input shape (the first call at a new length costs several calls): lengths
    are padded to a grid, so files of many lengths give a few shapes, and the model is compiled once."""
    e = Embedder(tiny_model_dir, backend="openvino", precision="f32")
    seen = []
    (request,) = e.backend._requests  # float32: one stage
    cfg = e.backend.cfg
    assert e.backend.stft == "fft"  # fed the power spectrum (B, bins, T) of the padded wave: its T gives the length
    length = lambda inputs: (next(v for k, v in inputs.items() if k != "n_frames").shape[-1] - 1) * cfg.hop_length + cfg.n_fft
    monkeypatch.setattr(e.backend, "_requests", [type("Recorder", (), {
        "infer": lambda self, inputs: seen.append(length(inputs)) or request.infer(inputs)})()])
    lengths = np.random.default_rng(1).uniform(0.2, 9.0, 40)
    e.embed([noisy(seconds=s, seed=i) for i, s in enumerate(lengths)], sr=16000)
    assert len(seen) == 40 and len(set(seen)) <= 25, sorted(set(seen))  # 40 without the grid
    assert all(e.backend.padded_length(n) == n for n in seen)  # every call on the grid


@needs_openvino
@needs_bf16
def test_bf16_is_close_to_f32_and_really_bf16(tiny_model_dir):
    f32 = Embedder(tiny_model_dir, backend="openvino", precision="f32").embed(clips(), sr=16000, normalize=True)
    bf16 = Embedder(tiny_model_dir, backend="openvino", precision="bf16").embed(clips(), sr=16000, normalize=True)
    cosine = (f32 * bf16).sum(1)
    assert cosine.min() > 0.999, cosine
    assert np.abs(f32 - bf16).max() > 1e-4  # bfloat16 keeps 8 bits of mantissa: float32's numbers would be a bug


@needs_openvino
@needs_bf16
def test_bf16_runs_the_frontend_in_float32_and_the_cnn_in_bfloat16(tiny_model_dir):
    """The STFT in bfloat16 moved real audio's vectors to a cosine of 0.92: in bf16 the STFT is scipy's FFT, the
    log-mel comes from a float32 stage, the float32 graph's numbers to rounding, and only the CNN computes in
    bfloat16."""
    import openvino as ov

    backend = Embedder(tiny_model_dir, backend="openvino", precision="bf16").backend
    front, cnn = backend._stages
    assert str(front.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    assert str(cnn.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'bfloat16'>"
    wave = (0.5 * np.random.default_rng(0).standard_normal((1, 32000))).astype(np.float32)  # loud: bf16's worst
    n_frames = np.array([(32000 - 400) // 160 + 1])
    model = ov.Core().read_model(str(tiny_model_dir / "model.onnx"))
    conv = next(op for op in model.get_ordered_ops()
                if op.get_type_name() == "Convolution" and op.input_value(0).get_partial_shape().rank.get_length() == 4)
    model.add_outputs([conv.input_value(0)])
    full = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
    want = full.infer({"wave": wave, "n_frames": n_frames})[1]
    assert backend.stft == "fft"
    got = backend._requests[0].infer({**backend._feed(wave), "n_frames": n_frames})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())  # the CNN's input, in float32
    vec = lambda b: b.run(wave, n_frames)[0].max(0)
    f32 = Embedder(tiny_model_dir, backend="openvino", precision="f32").backend
    a, b = vec(backend), vec(f32)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.9999


def _copy(tiny_model_dir, folder):
    shutil.copytree(tiny_model_dir, folder)
    return folder


@needs_openvino
def test_a_tampered_model_onnx_is_refused_as_onnx_runtime_refuses_it(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "m")
    data = bytearray((folder / "model.onnx").read_bytes())
    data[-100] ^= 1
    (folder / "model.onnx").write_bytes(bytes(data))
    for backend in ("onnx", "openvino"):
        with pytest.raises(IntegrityError, match=r"model\.onnx: sha256 .* does not match"):
            Embedder(folder, backend=backend)


@needs_openvino
def test_openvino_path_works_without_torch(tiny_model_dir):
    from test_embedder import run_isolated

    out = run_isolated(
        f"""
        import sys, numpy as np
        sys.modules["torch"] = None
        from audioembed import Embedder
        e = Embedder({str(tiny_model_dir)!r}, backend="openvino", precision="f32")
        print(e.backend_name, e.precision, e.embed(np.ones(16000, np.float32) * 0.1, sr=16000).shape)
        """
    )
    assert out.split() == ["openvino", "f32", "(32,)"]


def _cli_args(tiny_model_dir, tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "a.wav", tone(440, seconds=2.0), 16000, subtype="FLOAT")
    return ["embed", str(tmp_path / "a.wav"), "-m", str(tiny_model_dir)]


@needs_openvino
def test_cli_embeds_with_openvino_and_refuses_bf16_on_onnx(tiny_model_dir, tmp_path):
    from audioembed.cli import app

    args, runner = _cli_args(tiny_model_dir, tmp_path), CliRunner()
    result = runner.invoke(app, args + ["-o", str(tmp_path / "a.npy"), "--backend", "openvino", "--precision", "f32"])
    assert result.exit_code == 0, result.output
    want = Embedder(tiny_model_dir, backend="openvino", precision="f32").embed(tone(440, seconds=2.0), sr=16000)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), want)
    assert "note: backend" not in result.output  # float32 asked for: nothing to say
    refused = runner.invoke(app, args + ["-o", str(tmp_path / "b.npy"), "--backend", "onnx", "--precision", "bf16"])
    assert refused.exit_code == 2 and "error: backend 'onnx' computes in float32 only" in refused.output


@needs_openvino
def test_the_hub_gives_openvino_model_onnx_and_nothing_else(fake_hub, tiny_model_dir):
    commit = fake_hub.add_repo("someone/tiny-ov", tiny_model_dir, revision="v1")
    e = Embedder("someone/tiny-ov", revision="v1", backend="openvino", precision="f32")
    assert e.resolved.source == "hub" and e.resolved.folder.name == commit
    fetched = [r for r in fake_hub.requests if "tiny-ov" in r and r.startswith("GET")]
    assert any("model.onnx" in r for r in fetched) and not any("model.safetensors" in r for r in fetched)
    np.testing.assert_array_equal(e.embed(tone(440), sr=16000),
                                  Embedder(tiny_model_dir, backend="openvino", precision="f32").embed(tone(440), sr=16000))


@needs_openvino
@needs_bf16
def test_bf16_vectors_never_mix_with_f32_ones_in_an_output_but_search_takes_bf16_queries(tiny_model_dir, tmp_path):
    """An output records its precision: a bf16 run refuses an OUT of f32 vectors (equal inputs would give unequal
    vectors in one index); a search may embed its queries in bf16 against f32 rows (cosine ~0.9999)."""
    import soundfile as sf

    from audioembed import outputs
    from audioembed.cli import app

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"{i}.wav", noisy(seconds=1.0 + i, seed=i), 16000)
    f32 = Embedder(tiny_model_dir, backend="openvino", precision="f32").model_record()
    bf16 = Embedder(tiny_model_dir, backend="openvino", precision="bf16").model_record()
    assert "precision" not in f32 and bf16["precision"] == "bf16"  # f32 records stay as before: old outputs match
    assert outputs.same_model(f32, Embedder(tiny_model_dir, backend="onnx").model_record())
    assert not outputs.same_model(f32, bf16) and outputs.same_model(f32, bf16, precision=False)
    assert "32-d, bf16)" in outputs.describe_model(bf16)
    from audioembed.outputs import parquet

    assert "32-d, bf16, sha256" in parquet.describe(bf16) and "32-d, sha256" in parquet.describe(f32)  # a worker's refusal
    runner, out = CliRunner(), tmp_path / "out"
    base = ["embed", str(src), "-o", str(out), "-m", str(tiny_model_dir), "--backend", "openvino", "-q"]
    assert runner.invoke(app, base + ["--precision", "f32"]).exit_code == 0
    refused = runner.invoke(app, base + ["--precision", "bf16"])
    assert refused.exit_code == 2 and "bf16)" in refused.output and "--overwrite" in refused.output, refused.output
    found = runner.invoke(app, ["search", str(src / "1.wav"), "-i", str(out), "-m", str(tiny_model_dir), "--backend", "openvino",
                                "--precision", "bf16", "-k", "1"])
    assert found.exit_code == 0 and "1.wav" in found.output, found.output
