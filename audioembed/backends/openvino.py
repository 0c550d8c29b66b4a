"""OpenVINO backend: the same model.onnx on a CPU, in bfloat16 where the CPU computes it natively.

The file passes the checks ONNX Runtime's path makes (sha256 in hub.fetch, external data and graph in onnx.py).
Determinism: one stream, a fixed precision and thread count, and inputs padded to a fixed grid of lengths
(below), so the same input gives the same bits run after run and whatever it is batched with.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import numpy as np

from ..config import ModelConfig
from ..errors import BackendError, ModelError
from ..windows import WINDOW_FRAMES, context_frames
from .graph_cut import verified_cut
from .onnx import check_external_data, check_graph, session_options

PRECISIONS = ("f32", "bf16")
# One window per call, as onnx.py: on a CPU whole batches were no faster in bfloat16 either (issue 39's table),
# and a row's numbers then never depend on what it was batched with.
ROWS_PER_RUN = 1
# OpenVINO specialises its kernels for each input shape it meets: the first call at a new length cost 2-10x a
# repeat here, and the last window of every file has a length of its own. So inputs are zero-padded (exactly:
# the graph zeroes frames past n_frames) up to a grid of lengths with this many steps per octave of output frames
# (<= 12.5 % more work, ~40 shapes for windows of any length) that stops at a full window (windows.py).
STEPS_PER_OCTAVE = 8
_TYPES = {"f32": "tensor(float)", "i64": "tensor(int64)"}  # OpenVINO's element types as onnx.check_graph spells them


@functools.lru_cache(maxsize=1)
def bf16_native() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX), as OpenVINO's CPU plugin reports it."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def check_precision(precision: str) -> None:
    """bf16 only where the CPU has it: elsewhere OpenVINO would emulate it, slower than float32."""
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r} for the openvino backend: use 'auto', 'f32' or 'bf16'")
    if precision == "bf16" and not bf16_native():
        raise BackendError(
            "precision='bf16' needs a CPU with native bfloat16 (AVX-512 BF16 or AMX), and this one has none "
            "(OpenVINO reports no BF16 capability); use precision='f32' or 'auto'"
        )


class OpenVinoBackend:
    name = "openvino"
    rows_per_run = ROWS_PER_RUN

    def __init__(
        self, path: Path, cfg: ModelConfig, device: str = "auto", num_threads: int | None = None,
        precision: str = "f32",
    ):
        import openvino as ov

        if device not in ("auto", "cpu"):
            raise BackendError(f"the openvino backend runs on the CPU only (device={device!r}); use backend='torch'")
        check_precision(precision)
        self.device, self.precision, self.cfg = "cpu", precision, cfg
        self.window_mels = WINDOW_FRAMES * cfg.time_reduction + 2 * context_frames(cfg)  # a full window's log-mel frames
        external = check_external_data(path)
        core = ov.Core()
        try:
            model = core.read_model(os.fspath(path))
        except Exception as exc:
            raise ModelError(f"{path}: cannot load the ONNX model ({exc})") from exc
        inputs, outputs = _signature(model.inputs), _signature(model.outputs)
        # The graph from its power spectrum on, fed by scipy's FFT, as onnx.py runs it (graph_cut.py): the STFT as a
        # convolution was most of the time, and in bfloat16 it moved real audio's vectors to a cosine of 0.92.
        cut = verified_cut(path, cfg, session_options(num_threads), external=bool(external))
        source = cut.model if cut is not None else os.fspath(path)
        if cut is not None:
            model = core.read_model(source)
        self._feed = cut.feed if cut is not None else (lambda wave: {"wave": wave})
        self.stft = "fft" if cut is not None else "graph"
        settings = {
            # Explicit both ways: left unset, OpenVINO picks bfloat16 by itself on a CPU that has it.
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": num_threads or os.cpu_count() or 1,
            "NUM_STREAMS": 1,  # one stream, one request: no work split that could change with the load
            "PERFORMANCE_HINT": "LATENCY",
        }
        # The CNN alone in bfloat16, fed a float32 log-mel, stays at a cosine >= 0.99998 to float32. So in bf16 the
        # graph runs as two stages: what is left of the frontend (mel filterbank, log, standardisation) in float32,
        # then the CNN in bfloat16.
        stages = [(model, settings)]
        if precision == "bf16":
            front, cnn = split_at_the_cnn(core.read_model(source), model)
            stages = [(front, {**settings, "INFERENCE_PRECISION_HINT": "f32"}), (cnn, settings)]
        try:
            self._compile = lambda: [core.compile_model(m, "CPU", config) for m, config in stages]
            self._stages = self._compile()
        except Exception as exc:
            raise ModelError(f"{path}: OpenVINO cannot compile the model ({exc})") from exc
        self.compiled = self._stages[-1]  # the one that computes in `precision`
        self._requests = [c.create_infer_request() for c in self._stages]
        self._lock = threading.Lock()  # an infer request serves one call at a time; onnxruntime's session is shared
        check_graph(path, cfg, inputs, outputs, self.run)

    def run(self, wave: np.ndarray, n_frames: np.ndarray) -> np.ndarray:
        n = wave.shape[1]
        if n < self.cfg.n_fft:  # checked here: a call that fails inside OpenVINO breaks the compiled model
            raise ValueError(f"a wave of {n} samples is shorter than one log-mel frame (n_fft={self.cfg.n_fft})")
        padded = self.padded_length(n)
        if padded > n:
            wave = np.pad(wave, ((0, 0), (0, padded - n)))
        with self._lock:
            try:
                feed = {**self._feed(wave), "n_frames": n_frames}
                for request in self._requests[:-1]:  # bf16: the float32 frontend's log-mel feeds the CNN
                    feed = {"log_mel": request.infer(feed)[0], "n_frames": n_frames}
                frames = self._requests[-1].infer(feed)["frames"]
            except Exception:  # after a failed call, every later call of that compiled model failed (2026.4)
                self._stages = self._compile()
                self.compiled, self._requests = self._stages[-1], [c.create_infer_request() for c in self._stages]
                raise
        return frames[:, : self.out_frames(n)] if padded > n else frames

    def padded_length(self, n: int) -> int:
        """The grid length at or above n samples; n itself on the grid, or from a full window's length on."""
        cfg, r = self.cfg, self.cfg.time_reduction
        mels = (n - cfg.n_fft) // cfg.hop_length + 1
        if mels < 1 or mels >= self.window_mels:
            return n
        # 2**k <= output frames < 2**(k+1): steps of 2**k / STEPS_PER_OCTAVE output frames (at least one). Two
        # output frames at least: OpenVINO refuses a max-pool over a single frame, where onnxruntime gives one.
        step = r << max(0, (mels // r).bit_length() - STEPS_PER_OCTAVE.bit_length())  # in log-mel frames
        grid = min(max(-(-mels // step) * step, 2 * r), self.window_mels)
        return max(n, (grid - 1) * cfg.hop_length + cfg.n_fft)

    def out_frames(self, n: int) -> int:
        """Output frames the graph gives for n samples: one per time_reduction log-mel frames, and at least one."""
        return max(1, ((n - self.cfg.n_fft) // self.cfg.hop_length + 1) // self.cfg.time_reduction)


def split_at_the_cnn(front, cnn):
    """Two models from two copies of one graph: its inputs (the wave, or a cut graph's power spectrum) and n_frames
    -> the CNN's input (the masked, normalised log-mel that feeds the first 2-D convolution), and log_mel, n_frames
    -> frames."""
    import openvino as ov

    def first_conv(model):
        for op in model.get_ordered_ops():
            if op.get_type_name() == "Convolution" and op.input_value(0).get_partial_shape().rank.get_length() == 4:
                return op
        raise ModelError("model.onnx has no 2-D convolution to split the bf16 graph at")

    mel = first_conv(front).input_value(0)
    head = ov.Model([mel], front.get_parameters(), "frontend")
    conv = first_conv(cnn)
    log_mel = ov.opset13.parameter(conv.input_value(0).get_partial_shape(), ov.Type.f32, name="log_mel")
    conv.input(0).replace_source_output(log_mel.output(0))
    n_frames = [p for p in cnn.get_parameters() if p.get_friendly_name() == "n_frames"]
    return head, ov.Model(cnn.outputs, [log_mel, *n_frames], "cnn")


def _signature(ports) -> dict[str, tuple[str, int]]:
    return {
        p.get_any_name(): (_TYPES.get(p.get_element_type().get_type_name(), str(p.get_element_type())),
                           p.get_partial_shape().rank.get_length() if p.get_partial_shape().rank.is_static else -1)
        for p in ports
    }
