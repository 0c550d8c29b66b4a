"""Loading a model never executes code and never trusts a config blindly: safetensors and ONNX only,
typed and range-checked config values, ONNX external data confined to the model folder."""

import ast
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import audioembed
from audioembed import Embedder
from audioembed.config import ModelConfig
from audioembed.errors import ModelError

from conftest import tone
from hostile import PLACES, hostile_onnx

PACKAGE = Path(audioembed.__file__).parent
REFUSED = r"external data .* (lies outside|is not a plain relative file name inside) the model folder"


@pytest.mark.parametrize(
    "key, value",
    [
        ("dim", "abc"), ("dim", 0), ("dim", 32.0), ("dim", True), ("n_mels", -1), ("n_fft", None),
        ("hop_length", 0), ("sample_rate", -16000), ("n_blocks", 9), ("channels", [8]),
        ("f_max", 1e9), ("f_min", -5.0), ("norm_std", 0.0), ("norm_mean", "nan"), ("log_eps", -1.0),
        ("win_length", 4096), ("sha256", {"model.onnx": "not-a-digest"}), ("sha256", []), ("extra", 3),
        ("name", 7),
    ],
)
def test_config_values_are_type_and_range_checked(tiny_model_dir, tmp_path, key, value):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    data = json.loads((folder / "config.json").read_text())
    data[key] = value
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=rf"config\.json: .*{key}"):
        Embedder(folder, backend="onnx")


@pytest.mark.parametrize(
    "key, value",
    [
        ("channels", 6000), ("dim", 10**12), ("dim", 10**100), ("sample_rate", 10**9), ("n_fft", 10**9),
        ("win_length", 10**9), ("hop_length", 10**9), ("n_mels", 10**6), ("n_mels", 2**20), ("channels", 2**40),
        ("sample_rate", 500), ("hop_length", 2048),
    ],
)
def test_config_numbers_have_upper_bounds(tiny_model_dir, key, value):
    """Absurd sizes are refused by name before anything is allocated, not by a MemoryError or a traceback."""
    data = json.loads((tiny_model_dir / "config.json").read_text())
    data[key] = value
    with pytest.raises(ModelError, match=rf"config\.json: {key}={value} must be an integer in"):
        ModelConfig.from_dict(data)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_config_whose_model_would_be_huge_is_refused(tiny_model_dir, tmp_path, backend):
    """Each number in range, together too big: 623 M parameters (2.5 GB) would be allocated."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    data = json.loads((folder / "config.json").read_text())
    data.update(channels=1024, n_mels=512, dim=8192)
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"config\.json: channels=1024, n_mels=512, dim=8192 make a model of 622,888,960 parameters"):
        Embedder(folder, backend=backend)


def test_valid_config_round_trips(tiny_model_dir):
    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


class _Exploit:
    """Unpickling this would run code: the marker file proves whether it ever happened."""

    marker: Path

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_pickled_weights_are_never_unpickled(tiny_model_dir, tmp_path, backend):
    """Pickle payloads as the weight file and as pytorch_model.bin: a loader that unpickles either (say a
    torch.load fallback; scripts/mutants.py plants one) writes the marker and fails this test."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    marker = tmp_path / "marker"
    exploit = _Exploit()
    exploit.marker = marker
    weight = "model.safetensors" if backend == "torch" else "model.onnx"
    payload = pickle.dumps(exploit)
    pickle.loads(payload)  # the premise: unpickling this payload does write the marker
    assert marker.read_text() == "pwned"
    marker.unlink()
    (folder / weight).write_bytes(payload)
    (folder / "pytorch_model.bin").write_bytes(payload)
    data = json.loads((folder / "config.json").read_text())
    data["sha256"].pop(weight)  # get past the digest check: the loader itself must refuse pickle
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match=weight):
        Embedder(folder, backend=backend)
    assert not marker.exists()


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), {k.arg: ast.unparse(k.value) for k in node.keywords}


def test_package_source_never_unpickles():
    """A static check over every module: no pickle, no torch.load without weights_only=True, no allow_pickle."""
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "dill", "joblib", "cloudpickle") for n in names), path
        for func, kwargs in _calls(tree):
            if func.endswith("torch.load") or func == "load" and "weights_only" in kwargs:
                assert kwargs.get("weights_only") == "True", f"{path}: {func} without weights_only=True"
            assert kwargs.get("allow_pickle") in (None, "False"), f"{path}: {func}(allow_pickle=...)"


def _external_data_model(folder: Path, location: str) -> None:
    """Rewrite model.onnx so its first initializer lives in an external file at `location`."""
    import onnx
    from onnx.external_data_helper import set_external_data

    model = onnx.load(str(folder / "model.onnx"))
    tensor = model.graph.initializer[0]
    raw = onnx.numpy_helper.to_array(tensor).tobytes()
    set_external_data(tensor, location=location, offset=0, length=len(raw))
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    onnx.save(model, str(folder / "model.onnx"))
    target = (folder / location).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)
    data = json.loads((folder / "config.json").read_text())
    data["sha256"].pop("model.onnx")
    (folder / "config.json").write_text(json.dumps(data))


def test_onnx_external_data_inside_the_folder_loads(tiny_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    _external_data_model(folder, "weights.bin")
    expected = Embedder(tiny_model_dir, backend="onnx").embed(tone(440), sr=16000)
    loaded = Embedder(folder, backend="onnx")
    assert loaded.backend.stft == "graph"  # a graph cut from bytes could not find its external file: the whole graph runs
    np.testing.assert_allclose(loaded.embed(tone(440), sr=16000), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])  # openvino reads the same model.onnx
@pytest.mark.parametrize("location", ["../outside.bin", "sub/../../outside.bin", "/tmp/audioembed-outside.bin"])
def test_onnx_external_data_outside_the_folder_is_refused(tiny_model_dir, tmp_path, location, backend):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    _external_data_model(folder, location)
    with pytest.raises(ModelError, match=REFUSED):
        Embedder(folder, backend=backend)


def test_onnx_external_data_symlinked_outside_is_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    _external_data_model(folder, "weights.bin")
    outside = tmp_path / "elsewhere.bin"
    (folder / "weights.bin").rename(outside)
    (folder / "weights.bin").symlink_to(outside)
    with pytest.raises(ModelError, match="lies outside the model folder"):
        Embedder(folder, backend="onnx")


def test_external_locations_found_without_the_onnx_package(tiny_model_dir, tmp_path):
    from audioembed.backends.onnx import check_external_data

    assert check_external_data(tiny_model_dir / "model.onnx") == []
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    _external_data_model(folder, "sub/w.bin")
    assert check_external_data(folder / "model.onnx") == [(folder / "sub" / "w.bin").resolve()]


@pytest.mark.parametrize("where", PLACES)
def test_onnx_external_data_is_checked_wherever_a_graph_holds_tensors(tmp_path, where):
    from audioembed.backends.onnx import OnnxBackend, check_external_data

    path = hostile_onnx(tmp_path / "m", where)
    with pytest.raises(ModelError, match=REFUSED):
        check_external_data(path)
    with pytest.raises(ModelError, match=REFUSED):
        OnnxBackend(path, ModelConfig())
    inside = hostile_onnx(tmp_path / "ok", where, location="w.bin")
    (inside.parent / "w.bin").write_bytes(bytes(16))
    assert check_external_data(inside) == [(inside.parent / "w.bin").resolve()]


@pytest.mark.parametrize("where", PLACES)
def test_onnxruntime_memory_address_locations_are_refused_wherever_a_graph_holds_tensors(tmp_path, where):
    """onnxruntime <= 1.23 reads process memory at `offset` for the location `*/_ORT_MEM_ADDR_/*`: a model could
    turn a secret in memory into its output, or crash the process. Refused before onnxruntime sees the file."""
    from audioembed.backends.onnx import OnnxBackend, check_external_data

    path = hostile_onnx(tmp_path / "m", where, location="*/_ORT_MEM_ADDR_/*")
    with pytest.raises(ModelError, match=r"'\*/_ORT_MEM_ADDR_/\*' is not a plain relative file name inside the model folder"):
        check_external_data(path)
    with pytest.raises(ModelError, match="is not a plain relative file name"):
        OnnxBackend(path, ModelConfig())


@pytest.mark.parametrize("location", [
    "*/_ORT_MEM_ADDR_/*", "_ORT_MEM_ADDR_", "", ".", "./w.bin", "sub//w.bin", "sub/./w.bin", "w.bin/", "C:w.bin",
    "sub\\..\\..\\secret.bin", "w*.bin", "w.bin\n", "w.bin\x00", "/abs/w.bin", "../secret.bin", "sub/../w.bin",
])
def test_only_plain_relative_file_names_pass_as_external_data(tmp_path, location):
    """Each of these resolves inside the folder, names it, or means something special to a runtime: refused
    whether or not a file of that name exists; the plain names beside them pass."""
    from audioembed.backends.onnx import check_external_data

    path = hostile_onnx(tmp_path / "m", "initializer", location=location)
    with pytest.raises(ModelError, match="is not a plain relative file name inside the model folder"):
        check_external_data(path)
    for plain in ("w.bin", "sub/w.bin", "weights 1.bin", "données.bin"):
        ok = hostile_onnx(tmp_path / "ok", "initializer", location=plain)
        (ok.parent / plain).parent.mkdir(parents=True, exist_ok=True)
        (ok.parent / plain).write_bytes(bytes(16))
        assert check_external_data(ok) == [(ok.parent / plain).resolve()]


def test_onnx_external_data_of_a_symlinked_model_is_resolved_where_onnxruntime_looks(tmp_path):
    """onnxruntime reads external data next to the path it was given, not next to the link's target."""
    from audioembed.backends.onnx import check_external_data

    real = hostile_onnx(tmp_path / "real", "initializer", location="w.bin")
    (real.parent / "w.bin").write_bytes(bytes(16))  # an innocent file where the target's folder has it
    link = tmp_path / "link"
    link.mkdir()
    (link / "model.onnx").symlink_to(real)
    (link / "w.bin").symlink_to(tmp_path / "secret.bin")
    with pytest.raises(ModelError, match="lies outside the model folder"):
        check_external_data(link / "model.onnx")
    (link / "w.bin").unlink()
    (link / "w.bin").write_bytes(bytes(16))
    assert check_external_data(link / "model.onnx") == [(link / "w.bin").resolve()]


def _with_config(tiny_model_dir, folder: Path, **changes) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    data = json.loads((folder / "config.json").read_text())
    data.update(changes)
    (folder / "config.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
@pytest.mark.parametrize("key, value", [("hop_length", 80), ("n_blocks", 2), ("dim", 7), ("hop_length", 320)])
def test_config_is_checked_against_the_onnx_graph(tiny_model_dir, tmp_path, key, value, backend):
    """A config that disagrees with the graph would give wrong timestamps or a wrong Embedder.dim, silently."""
    folder = _with_config(tiny_model_dir, tmp_path / "m", **{key: value})
    with pytest.raises(ModelError, match=r"model\.onnx: the graph does not match config\.json"):
        Embedder(folder, backend=backend)


@pytest.mark.parametrize("key, value", [("channels", 16), ("n_blocks", 2), ("dim", 7), ("n_mels", 128)])
def test_config_is_checked_against_the_torch_weights(tiny_model_dir, tmp_path, key, value):
    folder = _with_config(tiny_model_dir, tmp_path / "m", **{key: value})
    with pytest.raises(ModelError, match=r"model\.safetensors: the weights do not match config\.json"):
        Embedder(folder, backend="torch")


def _graph(folder: Path, inputs, output_shape, op="ReduceSum") -> None:
    """A model.onnx that is a valid graph but not an audioembed model: wrong inputs or output rank."""
    import onnx
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    out = helper.make_tensor_value_info("frames", TensorProto.FLOAT, output_shape)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], vals=[1])
    node = helper.make_node(op, [inputs[0][0], "axes"], ["frames"], keepdims=0)
    graph = helper.make_graph([node], "g", ins, [out], [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(folder / "model.onnx"))


@pytest.mark.parametrize("case", ["1-D output", "wrong input name", "float n_frames"])
def test_onnx_graph_that_is_not_an_audioembed_model_is_refused(tiny_model_dir, tmp_path, case):
    from onnx import TensorProto

    folder = _with_config(tiny_model_dir, tmp_path / "m", sha256={})
    wave, n_frames = ("wave", TensorProto.FLOAT, ["B", "N"]), ("n_frames", TensorProto.INT64, ["B"])
    if case == "wrong input name":
        wave = ("audio", TensorProto.FLOAT, ["B", "N"])
    if case == "float n_frames":
        n_frames = ("n_frames", TensorProto.FLOAT, ["B"])
    _graph(folder, [wave, n_frames], ["B"])
    with pytest.raises(ModelError, match=r"model\.onnx: .*(inputs|graph does not match)"):
        Embedder(folder, backend="onnx")
