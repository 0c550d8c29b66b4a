"""Which onnxruntime releases read external data from outside the model folder (docs/reliability.md).

Builds one model per place a graph can hold a tensor (tests/hostile.py), each pointing at
`../secret.bin`, plus a symlinked model.onnx beside a `w.bin` link to the secret, and loads each with
the installed onnxruntime *directly* (not through audioembed, whose own check refuses them all).
READ means the secret's bytes came back as the model's output. Try other releases with

    pip install --target /tmp/ort-1.19.2 --no-deps onnxruntime==1.19.2
    PYTHONPATH=/tmp/ort-1.19.2 python benchmarks/onnxruntime_external_data.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hostile import PLACES, SECRET, hostile_onnx  # noqa: E402


def outcome(path: Path) -> str:
    import onnxruntime as ort

    try:
        y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {})[0]
    except Exception as exc:
        return "refused" if "escapes" in str(exc) or "outside" in str(exc) else f"fails ({str(exc)[:60]}...)"
    y = y.values() if hasattr(y, "values") else y  # an onnxruntime SparseTensor
    return "READ" if np.array_equal(np.asarray(y).ravel(), SECRET) else "ran"


def main() -> None:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = {where: outcome(hostile_onnx(root / where, where)) for where in PLACES}
        real = hostile_onnx(root / "real", "initializer", location="w.bin")
        (real.parent / "w.bin").write_bytes(bytes(16))
        (root / "link").mkdir()
        (root / "link" / "model.onnx").symlink_to(real)
        (root / "link" / "w.bin").symlink_to(root / "secret.bin")
        results["symlinked model.onnx"] = outcome(root / "link" / "model.onnx")
    print(f"onnxruntime {ort.__version__}: " + ", ".join(f"{k}={v}" for k, v in results.items()))


if __name__ == "__main__":
    main()
