"""model.onnx without its STFT: the same graph from the power spectrum on, so that an FFT can feed it.

Every audioembed model.onnx computes its STFT as a DFT convolution over the wave (it exports from torch and runs
anywhere). On a CPU that convolution was a third to a half of ONNX Runtime's time per window; scipy's FFT
(mel.PowerSpectrum) computes the same tensor in a fraction of it (benchmarks/stft_split.py: 1.2-1.7x overall).
The cut is found by structure, not by node names: the graph's first MatMul multiplies the mel filterbank (a
constant) by the power spectrum, and everything that tensor depends on comes from the input `wave` alone. The
bytes are rewritten with protobuf.py, so the ONNX path still needs no `onnx` package. A graph that does not look
like that gives None and runs whole; so does a cut whose numbers differ from the whole graph's (verified_cut).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import ModelConfig
from .protobuf import field, fields

__all__ = ["Cut", "verified_cut", "without_stft"]

_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT, _GRAPH_VALUE_INFO = 1, 5, 11, 12, 13
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP, _NODE_ATTRIBUTE = 1, 2, 4, 5
_ATTRIBUTE_GRAPHS = (6, 11)  # a subgraph (If, Loop, Scan) reads tensors the node's inputs do not name
_NAME = {_GRAPH_INITIALIZER: 8, _GRAPH_INPUT: 1, _GRAPH_OUTPUT: 1, _GRAPH_VALUE_INFO: 1}  # each message's name field
_FLOAT = 1


@dataclasses.dataclass
class Cut:
    model: bytes  # model.onnx from the power spectrum on
    feed: Callable[[np.ndarray], dict]  # centre-padded waves (B, N) -> the cut graph's spectrum input
    session: object  # an onnxruntime session of `model`


def verified_cut(path: Path, cfg: ModelConfig, opts, whole: Callable | None = None, external: bool = False) -> Cut | None:
    """model.onnx cut after its STFT, fed by scipy's FFT, where that gives the whole graph's numbers in ONNX Runtime
    (max |difference| <= 1e-5 of the largest value on a noise probe); None where the graph cannot be cut there, its
    weights live in external files (a graph loaded from bytes cannot find them), or scipy is missing.
    opts: onnxruntime SessionOptions (its thread count is the FFT's too); whole: (wave, n_frames) -> frames;
    external: whether the model keeps tensors in external files (onnx.check_external_data)."""
    import onnxruntime as ort

    try:
        from ..mel import PowerSpectrum

        if external:
            return None
        cut = without_stft(Path(path).read_bytes())
        if cut is None:
            return None
        model, name = cut
        if whole is None:
            whole_session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            whole = lambda wave, n_frames: whole_session.run(["frames"], {"wave": wave, "n_frames": n_frames})[0]  # noqa: E731
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        spectrum = PowerSpectrum(cfg, workers=opts.intra_op_num_threads)
        feed = lambda wave: {name: spectrum(wave)}  # noqa: E731
        # noise (silence would compare logs of the floor), and an item zero-padded past its n_frames
        n_mel = 8 * cfg.time_reduction
        wave = np.random.default_rng(0).uniform(-0.5, 0.5, (2, (n_mel - 1) * cfg.hop_length + cfg.n_fft))
        wave = wave.astype(np.float32)
        n_frames = np.array([n_mel, n_mel // 2], np.int64)
        want = whole(wave, n_frames)
        got = session.run(["frames"], {**feed(wave), "n_frames": n_frames})[0]
    except Exception:  # whatever fails here, the whole graph still runs: slower, never wrong
        return None
    if got.shape != want.shape or np.abs(got - want).max() > 1e-5 * max(1.0, float(np.abs(want).max())):
        return None
    return Cut(model, feed, session)


def without_stft(model: bytes, wave: str = "wave") -> tuple[bytes, str] | None:
    """(the graph from the power spectrum (B, bins, T) on, the name of that input), or None where the graph's
    first MatMul does not take a power spectrum computed from `wave` alone."""
    top = list(fields(model))
    graphs = [value for number, wire, value in top if number == _MODEL_GRAPH and wire == 2]
    if len(graphs) != 1:
        return None
    parts = list(fields(graphs[0]))
    nodes = [_node(value) for number, wire, value in parts if number == _GRAPH_NODE and wire == 2]
    if any(node["subgraph"] for node in nodes):
        return None
    producer = {out: node for node in nodes for out in node["outputs"]}
    constants = {_name(number, value) for number, wire, value in parts if number == _GRAPH_INITIALIZER}
    constants |= {out for node in nodes if node["op"] == "Constant" for out in node["outputs"]}
    matmuls = [node for node in nodes if node["op"] == "MatMul"]
    if not matmuls:
        return None
    varying = [name for name in matmuls[0]["inputs"] if name not in constants]
    if len(varying) != 1 or varying[0] not in producer or _sources(varying[0], producer) - constants != {wave}:
        return None
    cut = varying[0]
    keep = _needed([_name(n, v) for n, w, v in parts if n == _GRAPH_OUTPUT], producer, stop=cut)
    kept = [node for node in nodes if id(node) in keep]
    read = {name for node in kept for name in node["inputs"]}
    if wave in read:
        return None
    dropped = {out for node in nodes if id(node) not in keep for out in node["outputs"]}
    graph = b""
    for number, wire, value in parts:
        if number == _GRAPH_NODE:
            continue
        if number == _GRAPH_INITIALIZER and _name(number, value) not in read:
            continue
        if number == _GRAPH_INPUT and _name(number, value) not in read:
            continue
        if number == _GRAPH_VALUE_INFO and _name(number, value) in dropped:
            continue
        graph += field(number, wire, value)
    graph = b"".join(field(_GRAPH_NODE, 2, node["raw"]) for node in kept) + graph + field(_GRAPH_INPUT, 2, _input(cut))
    out = b"".join(field(_MODEL_GRAPH, 2, graph) if number == _MODEL_GRAPH else field(number, wire, value)
                   for number, wire, value in top)
    return out, cut


def _node(raw: bytes) -> dict:
    node = {"raw": raw, "inputs": [], "outputs": [], "op": "", "subgraph": False}
    for number, wire, value in fields(raw):
        if wire != 2:
            continue
        if number == _NODE_INPUT and value:  # an empty name is an omitted optional input
            node["inputs"].append(value.decode())
        elif number == _NODE_OUTPUT:
            node["outputs"].append(value.decode())
        elif number == _NODE_OP:
            node["op"] = value.decode()
        elif number == _NODE_ATTRIBUTE:
            node["subgraph"] |= any(n in _ATTRIBUTE_GRAPHS for n, w, v in fields(value))
    return node


def _name(number: int, message: bytes) -> str:
    for n, wire, value in fields(message):
        if n == _NAME.get(number) and wire == 2:
            return value.decode()
    return ""


def _sources(tensor: str, producer: dict) -> set[str]:
    """The tensors no node produces (graph inputs, initializers) that a tensor depends on."""
    seen, stack, found = set(), [tensor], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in producer:
            stack.extend(producer[name]["inputs"])
        else:
            found.add(name)
    return found


def _needed(outputs: list[str], producer: dict, stop: str) -> set[int]:
    """ids of the nodes the outputs need when `stop` is given as an input."""
    keep, stack, seen = set(), list(outputs), set()
    while stack:
        name = stack.pop()
        if name in seen or name == stop or name not in producer:
            continue
        seen.add(name)
        keep.add(id(producer[name]))
        stack.extend(producer[name]["inputs"])
    return keep


def _input(name: str) -> bytes:
    """ValueInfoProto: a float tensor (batch, bins, time)."""
    dims = b"".join(field(1, 2, field(2, 2, d.encode())) for d in ("batch", "bins", "time"))
    tensor = field(1, 0, _FLOAT) + field(2, 2, dims)
    return field(1, 2, name.encode()) + field(2, 2, field(1, 2, tensor))
