"""Hostile inputs built on the spot, for the tests and for the benchmarks that measure what they cost:
ONNX models whose tensor lives in external data at a chosen path, and sparse WAVs that are huge to
decode but take no space on disk."""

import struct
from pathlib import Path

import numpy as np

PLACES = ["initializer", "attribute", "function", "subgraph", "sparse_attribute", "sparse_initializer", "training_info"]
SECRET = np.arange(42, 46, dtype=np.float32)  # written next to the model folder as secret.bin


def hostile_onnx(folder: Path, where: str, location: str = "../secret.bin") -> Path:
    """A model.onnx whose only tensor lives in external data at `location`, stored in one of the places
    a graph can hold a tensor; its output is that tensor, so a runtime that follows the path leaks it."""
    import onnx
    from onnx import TensorProto, helper

    def ext(name):
        t = helper.make_tensor(name, TensorProto.FLOAT, [4], vals=[0, 0, 0, 0])
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "16")):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t

    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])]
    nodes, inits, functions = [], [], []
    constant = helper.make_node("Constant", [], ["y"], value=ext("c"))
    if where == "initializer":
        nodes, inits = [helper.make_node("Identity", ["w"], ["y"])], [ext("w")]
    elif where == "attribute":
        nodes = [constant]
    elif where == "function":
        fn_node = helper.make_node("Constant", [], ["o"], value=ext("c"))
        functions = [helper.make_function("local", "Leak", [], ["o"], [fn_node], [helper.make_opsetid("", 17)])]
        nodes = [helper.make_node("Leak", [], ["y"], domain="local")]
    elif where == "subgraph":
        b_out = [helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])]
        branch = helper.make_graph([helper.make_node("Constant", [], ["b"], value=ext("c"))], "b", [], b_out)
        inits = [helper.make_tensor("cond", TensorProto.BOOL, [], vals=[True])]
        nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)]
    elif where == "sparse_attribute":  # a (1, 4) dense shape: onnxruntime 1.19 cannot densify 1-D sparse constants
        indices = helper.make_tensor("i", TensorProto.INT64, [4], vals=[0, 1, 2, 3])
        out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]
        nodes = [helper.make_node("Constant", [], ["y"], sparse_value=helper.make_sparse_tensor(ext("v"), indices, [1, 4]))]
    graph = helper.make_graph(nodes, "g", [], out, inits)
    if where == "sparse_initializer":
        indices = helper.make_tensor("i", TensorProto.INT64, [4], vals=[0, 1, 2, 3])
        graph.sparse_initializer.append(helper.make_sparse_tensor(ext("s"), indices, [4]))
        graph.node.append(helper.make_node("Identity", ["s"], ["y"]))
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    model = helper.make_model(graph, opset_imports=opsets, functions=functions, ir_version=8)
    if where == "training_info":  # onnxruntime runs the inference graph only; our check reads the training graphs too
        model.graph.node.append(helper.make_node("Constant", [], ["y"], value=helper.make_tensor("z", TensorProto.FLOAT, [4], [0] * 4)))
        info = model.training_info.add()
        info.initialization.CopyFrom(helper.make_graph([constant], "init", [], out))
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    (folder.parent / "secret.bin").write_bytes(SECRET.tobytes())
    return folder / "model.onnx"


def sparse_wav(path: Path, channels: int, rate: int, seconds: float) -> None:
    """An 8-bit WAV whose samples are a hole in the file: big to decode, a few KB on disk."""
    data = int(channels * rate * seconds)
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, channels, rate, channels * rate, channels, 8) + b"data" + struct.pack("<I", data)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + data)
