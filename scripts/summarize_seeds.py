"""Mean ± std over seeds of an `audioembed evaluate --json` report whose models are runs NAME-sSEED.

    python scripts/summarize_seeds.py DATA/sel/eval-*.json [--runs DATA/sel]

Several reports (e.g. runs evaluated as they finished) are read as one.

Each cell: the mean over seeds of a run's linear-probe accuracy, ± the standard deviation over
seeds (the spread a gain has to exceed). With --runs, the last logged training row of each run
(training.json: training.final) adds the representation probes: cosine of two views (pos), of
a position-perturbed copy (neg) and of a 2–4-band frequency shift (shift).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
from pathlib import Path

from audioembed import record


def arm_of(name: str) -> str:
    return re.sub(r"-s\d+$", "", name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", type=Path, nargs="+")
    ap.add_argument("--runs", type=Path, help="folder holding the run folders (for the training probes)")
    args = ap.parse_args()
    reports = [json.loads(p.read_text()) for p in args.reports]
    datasets = list(dict.fromkeys(d["name"] for r in reports for d in r["datasets"]))
    acc: dict = collections.defaultdict(lambda: collections.defaultdict(list))
    seen = set()
    for report in reports:
        for cell in report["results"]:
            if cell["accuracy_mean"] is not None and (cell["row"], cell["dataset"]) not in seen:
                seen.add((cell["row"], cell["dataset"]))
                acc[arm_of(cell["row"])][cell["dataset"]].append(100 * cell["accuracy_mean"])
    probes: dict = collections.defaultdict(lambda: collections.defaultdict(list))
    if args.runs:
        for cfg in sorted(args.runs.glob("*/config.json")):
            final = record.load(cfg.parent).final
            for key in ("probe_pos", "probe_neg", "probe_shift"):
                if key in final:
                    probes[arm_of(cfg.parent.name)][key].append(final[key])
    keys = ["probe_pos", "probe_neg", "probe_shift"] if probes else []
    print("| arm (seeds) | " + " | ".join(datasets + keys) + " |")
    print("|---" * (1 + len(datasets) + len(keys)) + "|")
    for arm, cells in acc.items():
        n = max(len(v) for v in cells.values())
        texts = []
        for d in datasets:
            v = cells.get(d, [])
            texts.append(f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else (f"{v[0]:.1f}" if v else "—"))
        for k in keys:
            v = probes[arm][k]
            texts.append(f"{statistics.mean(v):.3f}" if v else "—")
        print(f"| {arm} ({n}) | " + " | ".join(texts) + " |")


if __name__ == "__main__":
    main()
