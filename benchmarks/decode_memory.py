"""Peak memory of embedding files with many channels at high rates (docs/reliability.md, issue 11 item 4).

Each case runs in a fresh process: load the bundled model (ONNX backend), note the RSS, embed the files
with 4 decoding workers, and print the peak RSS before and after. The files are mostly silence: a
sparse 8-bit WAV (a few KB on disk) and FLACs of digital silence (a few hundred KB), so their size on disk says
nothing about what decoding them costs.

    python benchmarks/decode_memory.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hostile import sparse_wav  # noqa: E402

MODEL = Path(__file__).resolve().parent.parent / "models" / "audioembed-base"


def silent_flac(path: Path, channels: int, rate: int, seconds: float) -> None:
    import soundfile as sf

    sf.write(path, np.zeros((int(rate * seconds), channels), np.int16), rate, subtype="PCM_16")


def child(paths: list[str]) -> None:
    from audioembed import Embedder

    e = Embedder(MODEL, backend="onnx", num_workers=4)
    e.embed(np.zeros(16000, np.float32), sr=16000)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    failures = [str(r.error)[:200] for r in e.iter_results(paths) if r.error is not None]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb_after_loading": round(base / 1024), "peak_rss_mb_after_embedding": round(peak / 1024),
                      "errors": failures}))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "wide.wav"
        sparse_wav(wav, 128, 768_000, 10.0)
        flacs = [Path(tmp) / f"f{i}.flac" for i in range(4)]
        for f in flacs:
            silent_flac(f, 8, 655_350, 10.0)
        cases = {
            "sparse WAV, 128 ch, 768 kHz, 8-bit, 10 s": [wav],
            "4 FLACs, 8 ch, 655350 Hz, 10 s, 4 workers": flacs,
        }
        for name, paths in cases.items():
            size = sum(p.stat().st_blocks * 512 for p in paths)
            out = subprocess.run([sys.executable, __file__, "--child", *map(str, paths)], capture_output=True, text=True)
            result = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-300:]}
            print(f"{name} ({size / 1e3:.0f} KB on disk): {result}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    else:
        main()
