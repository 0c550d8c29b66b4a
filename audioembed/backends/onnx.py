"""ONNX Runtime backend: CPU inference without torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import ModelConfig
from ..errors import BackendError, ModelError
from .protobuf import fields


# Windows per session.run. Each ~10 s window needs ~34 MB of activations (the first conv's output
# dominates) and on a CPU batches of windows were no faster (benchmarks/run.py), so the Embedder
# runs batches in slices of this many rows, each padded only to its own longest window: memory
# stays that of a short file, and short windows cost what their length costs.
ROWS_PER_RUN = 1


class OnnxBackend:
    precision = "f32"
    name = "onnx"
    rows_per_run = ROWS_PER_RUN

    def __init__(
        self, path: Path, cfg: ModelConfig, device: str = "auto", num_threads: int | None = None, stft: str = "fft",
    ):
        """stft: 'fft' runs the graph from its power spectrum on, fed by scipy's FFT (graph_cut.py; ~1.4x faster per
        window), where the graph allows it and gives the same numbers; 'graph' always runs the whole graph."""
        import onnxruntime as ort

        if device not in ("auto", "cpu"):
            raise BackendError(f"the onnx backend runs on the CPU only (device={device!r}); use backend='torch'")
        self.device = "cpu"
        external = check_external_data(path)
        opts = session_options(num_threads)
        try:
            self.session = ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc
        check_graph(
            path, cfg,
            {i.name: (i.type, len(i.shape)) for i in self.session.get_inputs()},
            {o.name: (o.type, len(o.shape)) for o in self.session.get_outputs()},
            self.run,
        )
        from .graph_cut import verified_cut

        cut = verified_cut(path, cfg, opts, self.run, external=bool(external)) if stft == "fft" else None
        if cut is not None:
            self.session, self._feed = cut.session, cut.feed
        self.stft = "fft" if cut is not None else "graph"  # what computed the STFT: part of the numbers' identity

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        return self.session.run(["frames"], {**self._feed(wave), "n_frames": n_frames})[0]

    @staticmethod
    def _feed(wave: np.ndarray) -> dict:
        return {"wave": wave}


def session_options(num_threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = num_threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    # Idle ORT threads sleep instead of spinning: spinning steals the cores that decode workers need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


_INPUTS = {"wave": ("tensor(float)", 2), "n_frames": ("tensor(int64)", 1)}


def check_graph(
    path: Path, cfg: ModelConfig, inputs: dict[str, tuple[str, int]], outputs: dict[str, tuple[str, int]],
    run: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> None:
    """The graph must take (wave, n_frames), give frames (B, T, dim) and reduce time as config.json says:
    a config that disagrees would give wrong timestamps or vectors of another size, silently.

    inputs, outputs: name -> (ONNX type as onnxruntime spells it, e.g. "tensor(float)", rank), from whichever
    runtime loaded the graph; run: that runtime's (wave, n_frames) -> frames."""
    if inputs != _INPUTS or outputs.get("frames") != ("tensor(float)", 3):
        raise ModelError(
            f"{path}: not an audioembed model: its inputs are {inputs} and outputs {outputs}; expected inputs "
            "wave (float, 2-D) and n_frames (int64, 1-D) and output frames (float, 3-D)"
        )
    # One probe: as many samples as config.json says make 8 output frames, which is what windows.py will feed it.
    n_mel = 8 * cfg.time_reduction
    wave = np.zeros((1, (n_mel - 1) * cfg.hop_length + cfg.n_fft), np.float32)
    try:
        shape = run(wave, np.array([n_mel], np.int64)).shape
    except Exception as exc:
        raise ModelError(f"{path}: the model fails on a {wave.shape[1]}-sample input ({exc})") from exc
    if shape != (1, 8, cfg.dim):
        raise ModelError(
            f"{path}: the graph does not match config.json: {wave.shape[1]} samples (= {n_mel} log-mel frames with "
            f"hop_length={cfg.hop_length}, n_fft={cfg.n_fft}) give frames of shape {shape}, where config.json "
            f"implies (1, 8, {cfg.dim}) (n_blocks={cfg.n_blocks}, dim={cfg.dim}); use the config.json that was "
            "exported with this model.onnx"
        )


def check_external_data(path: Path) -> list[Path]:
    """The files an ONNX model keeps its tensors in; refuse any location that is not a plain relative file
    name inside the model's folder, before onnxruntime sees the model.

    onnxruntime before 1.27 follows `../`, absolute and symlinked external-data paths in some places a
    graph holds tensors (1.19 anywhere; 1.24 to 1.26 in sparse tensors), and up to 1.23 reads process
    memory for the location `*/_ORT_MEM_ADDR_/*`, so a model file could make it read any file on the
    machine or its own memory; this check does not depend on the installed version. Paths resolve against
    the folder of `path` as given, not of a symlink's target: that is where onnxruntime looks.
    """
    folder = os.path.realpath(Path(path).parent)
    try:
        locations = _external_locations(Path(path).read_bytes())
    except (ModelError, RecursionError) as exc:
        raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the ONNX model ({exc})") from exc
    files = []
    for location in dict.fromkeys(locations):
        if not _plain_relative(location):
            raise ModelError(
                f"{path}: external data {location!r} is not a plain relative file name inside the model folder "
                f"{folder}; refusing to load it"
            )
        target = os.path.realpath(os.path.join(Path(path).parent, location))
        if folder != os.path.commonpath([folder, target]) or target == folder:  # a symlink inside that points out
            raise ModelError(
                f"{path}: external data {location!r} lies outside the model folder {folder}; refusing to load it"
            )
        files.append(Path(target))
    return files


_SPECIAL = set('*?:\\<>|"')  # wildcards, drive letters and Windows separators: never in a plain file name


def _plain_relative(location: str) -> bool:
    """`w.bin` or `sub/w.bin`: parts that are file names, no `..`, `.`, empty part, absolute path, drive,
    wildcard (onnxruntime's `*/_ORT_MEM_ADDR_/*` reads memory) or control character."""
    parts = location.split("/")
    return not location.startswith("/") and all(
        part not in ("", ".", "..") and part.isprintable() and not _SPECIAL & set(part) for part in parts
    ) and "_ORT_MEM_ADDR_" not in location


# Where a model can hold a TensorProto: message -> {field number: what that field holds} (onnx.proto).
_HOLDS = {
    "model": {7: "graph", 20: "training_info", 25: "function"},
    "training_info": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse_tensor"},
    "function": {7: "node", 11: "attribute"},  # attribute_proto: default values of the function's attributes
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse_tensor", 23: "sparse_tensor"},
    "sparse_tensor": {1: "tensor", 2: "tensor"},
}
_EXTERNAL_DATA = 13  # TensorProto.external_data: StringStringEntryProto key=1, value=2


def _external_locations(model: bytes) -> list[str]:
    """Every external-data location in the model: graphs, nodes, attributes, functions, subgraphs, training."""
    found: list[str] = []

    def walk(buf: bytes, kind: str) -> None:
        for number, wire, value in fields(buf):
            if wire != 2:
                continue
            if kind == "tensor":
                if number == _EXTERNAL_DATA:
                    entry = {n: v for n, w, v in fields(value) if w == 2}
                    if entry.get(1) == b"location":
                        found.append(os.fsdecode(entry.get(2, b"")))
            elif number in _HOLDS[kind]:
                walk(value, _HOLDS[kind][number])

    walk(model, "model")
    return found
