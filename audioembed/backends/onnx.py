"""ONNX Runtime backend: CPU inference without torch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import BackendError, ModelError


# Windows per session.run. Each ~10 s window needs ~34 MB of activations (the first conv's output
# dominates) and on a CPU batches of windows were no faster (benchmarks/run.py), so the Embedder
# runs batches in slices of this many rows, each padded only to its own longest window: memory
# stays that of a short file, and short windows cost what their length costs.
ROWS_PER_RUN = 1


class OnnxBackend:
    name = "onnx"
    rows_per_run = ROWS_PER_RUN

    def __init__(self, path: Path, device: str = "auto", num_threads: int | None = None):
        import onnxruntime as ort

        if device not in ("auto", "cpu"):
            raise BackendError(f"the onnx backend runs on the CPU only (device={device!r}); use backend='torch'")
        self.device = "cpu"
        check_external_data(path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = num_threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        # Idle ORT threads sleep instead of spinning: spinning steals the cores that decode workers need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        return self.session.run(["frames"], {"wave": wave, "n_frames": n_frames})[0]


def check_external_data(path: Path) -> list[Path]:
    """The files an ONNX model keeps its tensors in; refuse any that resolve outside the model's folder.

    Older onnxruntime releases follow `../` and absolute external-data paths, so a model file could make
    them read any file on the machine; this check does not depend on the installed version.
    """
    folder = Path(path).resolve().parent
    files = []
    try:
        locations = _external_locations(Path(path).read_bytes())
    except (ModelError, RecursionError) as exc:
        raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the ONNX model ({exc})") from exc
    for location in locations:
        target = (folder / location).resolve()
        if Path(location).is_absolute() or folder not in target.parents:
            raise ModelError(
                f"{path}: external data {location!r} lies outside the model folder {folder}; refusing to load it"
            )
        files.append(target)
    return files


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; values of length-delimited fields as bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ModelError(f"not a valid ONNX file (protobuf wire type {wire})")
        yield number, wire, value


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ModelError("not a valid ONNX file (truncated protobuf)")
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return result, i
        shift += 7


# ModelProto.graph=7; GraphProto.node=1, initializer=5, sparse_initializer=15; NodeProto.attribute=5;
# AttributeProto.t=5, g=6, tensors=10, graphs=11; SparseTensorProto.values=1, indices=2;
# TensorProto.external_data=13 (StringStringEntryProto key=1, value=2).
def _external_locations(model: bytes) -> list[str]:
    found: list[str] = []

    def tensor(buf: bytes) -> None:
        for number, wire, value in _fields(buf):
            if number == 13 and wire == 2:
                entry = {n: v for n, w, v in _fields(value) if w == 2}
                if entry.get(1) == b"location":
                    found.append(entry.get(2, b"").decode("utf-8", "replace"))

    def graph(buf: bytes) -> None:
        for number, wire, value in _fields(buf):
            if wire != 2:
                continue
            if number == 5:
                tensor(value)
            elif number == 15:
                for n, w, v in _fields(value):
                    if n in (1, 2) and w == 2:
                        tensor(v)
            elif number == 1:
                for n, w, attribute in _fields(value):
                    if n == 5 and w == 2:
                        for m, x, v in _fields(attribute):
                            if x == 2 and m in (5, 10):
                                tensor(v)
                            elif x == 2 and m in (6, 11):
                                graph(v)

    for number, wire, value in _fields(model):
        if number == 7 and wire == 2:
            graph(value)
    return found
