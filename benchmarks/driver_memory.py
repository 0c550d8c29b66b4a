"""What the embed-cluster driver holds for N files: the path list, the finished set, the path blocks.

python benchmarks/driver_memory.py [--paths 1000000]

The driver never holds embeddings (the workers write them); its memory is the paths. This builds what
`audioembed embed-cluster MANIFEST` builds before Ray starts, for a manifest of N paths, half of them
already in OUT, and prints the growth of the process's resident memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paths", type=int, default=1_000_000)
    n = p.parse_args().paths
    import pyarrow as pa

    from audioembed.outputs import parquet
    from audioembed.integrations import ray as distributed

    with tempfile.TemporaryDirectory() as tmp:
        manifest, out = Path(tmp) / "manifest.txt", Path(tmp) / "out.parquet"
        lines = [f"/archive/podcasts/{i // 1000:04d}/{i % 1000:03d}/episode-{i:07d}.mp3" for i in range(n)]
        manifest.write_text("\n".join(lines) + "\n")
        out.mkdir()
        record = {"model": "benchmark", "revision": None, "weights_sha256": {}, "dim": 0}
        parquet.write_shard(pa.table({"path": lines[::2]}), out, parquet.shard_name("0", 0), record)  # half done
        del lines
        before = rss_mb()
        paths = distributed.list_inputs([manifest], [])
        done = parquet.scan(out, record).done
        todo = [q for q in paths if parquet.text(q) not in done]
        names = [os.fsencode(q) for q in todo]  # as distributed.run sends them
        blocks = [pa.table({"path": pa.array(names[i : i + 256], pa.binary())}) for i in range(0, len(names), 256)]
        grown = rss_mb() - before
    print(f"{n} paths ({len(todo)} to do, {len(blocks)} blocks): driver resident memory +{grown:.0f} MB "
          f"({grown / n * 1e6:.0f} MB per million paths)")


if __name__ == "__main__":
    main()
