"""ONNX Runtime runs model.onnx from its power spectrum on, fed by scipy's FFT (backends/graph_cut.py): the cut must
give the whole graph's numbers, fall back to the whole graph wherever it could not, and find the STFT by structure."""

from pathlib import Path

import numpy as np
import pytest

from audioembed.backends.graph_cut import without_stft
from audioembed.backends.onnx import OnnxBackend
from audioembed.config import ModelConfig
from audioembed.mel import PowerSpectrum, centre_pad

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SHIPPED = Path(__file__).parents[1] / "models" / "audioembed-base"


def _backends(folder: Path):
    cfg = ModelConfig.load(folder / "config.json")
    return cfg, OnnxBackend(folder / "model.onnx", cfg, num_threads=1), OnnxBackend(folder / "model.onnx", cfg, num_threads=1, stft="graph")


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_the_cut_graph_gives_the_whole_graphs_numbers(which, tiny_model_dir):
    cfg, fast, whole = _backends(tiny_model_dir if which == "tiny" else SHIPPED)
    assert (fast.stft, whole.stft) == ("fft", "graph")
    assert "wave" not in {i.name for i in fast.session.get_inputs()}
    rng = np.random.default_rng(1)
    n = 3 * 16000
    wave = np.stack([centre_pad(0.3 * rng.standard_normal(n).astype(np.float32), cfg) for _ in range(2)])
    n_frames = np.array([n // cfg.hop_length + 1, n // cfg.hop_length // 3], np.int64)  # the second zero-padded
    got, want = fast.run(wave, n_frames), whole.run(wave, n_frames)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * np.abs(want).max())
    assert fast.run(wave, n_frames).tobytes() == got.tobytes()  # and the same bits call after call


def test_the_spectrum_is_the_tensor_the_graph_computed(tiny_model_dir):
    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    model, name = without_stft((tiny_model_dir / "model.onnx").read_bytes())
    whole = onnx.load(str(tiny_model_dir / "model.onnx"))
    whole.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    wave = centre_pad(np.random.default_rng(2).uniform(-1, 1, 8000).astype(np.float32), cfg)[None]
    session = ort.InferenceSession(whole.SerializeToString(), providers=["CPUExecutionProvider"])
    graph_power = session.run([name], {"wave": wave, "n_frames": np.array([51], np.int64)})[0]
    ours = PowerSpectrum(cfg)(wave)
    assert ours.shape == graph_power.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, graph_power, rtol=1e-4, atol=1e-4 * graph_power.max())


def test_a_cut_whose_numbers_differ_falls_back_to_the_whole_graph(tiny_model_dir, monkeypatch):
    real = PowerSpectrum.__call__
    monkeypatch.setattr(PowerSpectrum, "__call__", lambda self, padded: real(self, padded) * np.float32(1.01))
    cfg, fast, whole = _backends(tiny_model_dir)
    assert fast.stft == "graph"
    assert "wave" in {i.name for i in fast.session.get_inputs()}


def test_without_scipy_the_whole_graph_runs(tiny_model_dir, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError("No module named 'scipy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    cfg, fast, _ = _backends(tiny_model_dir)
    assert fast.stft == "graph"


# graphs built by hand: where the cut is, and where there is none ---------------------------------------------

def _graph(power_from_n_frames=False, matmul=True, subgraph=False) -> bytes:
    """wave (1, 8) -> one frame of 2 'bins' -> power (1, 2, 1) -> [MatMul with a constant filterbank] -> Log -> + n_frames."""
    basis = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(2, 8) / 10, "basis")
    fb = numpy_helper.from_array(np.array([[1.0, 0.5], [0.25, 2.0]], np.float32), "fb")
    nodes = [
        helper.make_node("Transpose", ["wave"], ["wave_t"]),  # (8, 1)
        helper.make_node("Gemm", ["basis", "wave_t"], ["spec"]),  # (2 bins, 1 frame)
        helper.make_node("Mul", ["spec", "spec"], ["square"]),
        helper.make_node("Constant", [], ["axis"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["square", "axis"], ["power0"]),  # (batch 1, bins, frames), as the models'
    ]
    if power_from_n_frames:
        nodes += [helper.make_node("Cast", ["n_frames"], ["nf"], to=TensorProto.FLOAT),
                  helper.make_node("Add", ["power0", "nf"], ["power"])]
    else:
        nodes += [helper.make_node("Identity", ["power0"], ["power"])]
    if subgraph:
        branch = helper.make_graph([helper.make_node("Identity", ["power"], ["b"])], "b", [],
                                   [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
        nodes += [helper.make_node("Constant", [], ["yes"], value=numpy_helper.from_array(np.array(True)))]
        nodes += [helper.make_node("If", ["yes"], ["power_if"], then_branch=branch, else_branch=branch)]
        last = "power_if"
    else:
        last = "power"
    nodes += [helper.make_node("MatMul", ["fb", last], ["mel"]) if matmul else helper.make_node("Mul", [last, last], ["mel"]),
              helper.make_node("Log", ["mel"], ["log"]),
              helper.make_node("Cast", ["n_frames"], ["nf2"], to=TensorProto.FLOAT),
              helper.make_node("Add", ["log", "nf2"], ["frames"])]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("wave", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("n_frames", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("frames", TensorProto.FLOAT, [1, 2, 1])],
        initializer=[basis, fb],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_the_cut_is_the_power_spectrum_and_the_rest_runs_on_its_own():
    model = _graph()
    cut, name = without_stft(model)
    assert name == "power"
    whole = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    rest = ort.InferenceSession(cut, providers=["CPUExecutionProvider"])
    assert {i.name for i in rest.get_inputs()} == {"power", "n_frames"}
    assert "basis" not in {t.name for t in onnx.load_from_string(cut).graph.initializer}  # the STFT's weights are gone
    wave, nf = np.linspace(-1, 1, 8, dtype=np.float32)[None], np.array([3], np.int64)
    power = ((np.arange(16, dtype=np.float32).reshape(2, 8) / 10 @ wave.T) ** 2)[None]
    np.testing.assert_allclose(rest.run(None, {"power": power, "n_frames": nf})[0],
                               whole.run(None, {"wave": wave, "n_frames": nf})[0], rtol=1e-6)
    onnx.checker.check_model(onnx.load_from_string(cut))


@pytest.mark.parametrize("kind", ["power depends on n_frames", "no MatMul", "a subgraph"])
def test_no_cut_where_the_graph_is_not_an_stft_then_a_filterbank(kind):
    model = {"power depends on n_frames": lambda: _graph(power_from_n_frames=True),
             "no MatMul": lambda: _graph(matmul=False),
             "a subgraph": lambda: _graph(subgraph=True)}[kind]()
    ort.InferenceSession(model, providers=["CPUExecutionProvider"])  # a valid graph, just not one to cut
    assert without_stft(model) is None

