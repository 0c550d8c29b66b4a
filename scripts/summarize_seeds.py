"""Mean ± std over seeds of an `audioembed evaluate --json` report whose models are runs named with a seed
(`NAME-sSEED` or `ARCH-sSEED-ARM`, as scripts/train_v04.sh names them), and the quality issue's release rule.

    python scripts/summarize_seeds.py DATA/runs-v04/eval-v04.json [--runs DATA/runs-v04] [--rule models/audioembed-base]

Several reports (e.g. runs evaluated as they finished) are read as one.

Each cell: the mean over seeds of a run's linear-probe accuracy, ± the standard deviation over
seeds (the spread a gain has to exceed). With --runs, the last logged training row of each run
(training.json: training.final) adds the representation probes: cosine of two views (pos), of
a position-perturbed copy (neg) and of a 2–4-band frequency shift (shift).

--rule REFERENCE checks each arm against the release rule of quality v0.4, REFERENCE being the shipped model's
row (v0.3.0): (1) the arm's dev-set mean is above REFERENCE's by more than the training seeds' spread (the std over
seeds of each seed's dev-set mean); (2) no set falls below REFERENCE by more than that set's std over seeds;
(3) every set is at or above random weights read out the same way (the `random-init` row of the run's
architecture, read from its config.json under --runs). An arm with one seed has no spread: it is "undecided".
The last line names the run to release (`release()`: of the passing arms the highest mean, a negatives arm first
where the means are within the seeds' spread; of that arm the seed nearest its per-set means), or says none passes.

Where an architecture has both arms (`ARCH-sSEED-neg` and `ARCH-sSEED-none`), the negatives' gain over the
ablation is printed per set and for the mean, paired by seed: mean ± std over the seeds both arms finished.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
from pathlib import Path

from audioembed import record


def arm_of(name: str) -> str:
    """A row's arm: its folder name without the seed (`a/audiontt2022-s42-neg` -> `audiontt2022-neg`)."""
    return re.sub(r"-s\d+(?=-|$)", "", Path(name).name)


def read_reports(paths: list[Path]) -> tuple[list[str], dict, dict]:
    """-> (datasets, {row: {dataset: accuracy %}}, {arm: [rows]}); the first report that holds a cell wins."""
    reports = [json.loads(p.read_text()) for p in paths]
    datasets = list(dict.fromkeys(d["name"] for r in reports for d in r["datasets"]))
    cells: dict = collections.defaultdict(dict)
    kinds: dict = {}
    for report in reports:
        for row in report.get("rows", []):
            kinds.setdefault(row["name"], row["kind"])
        for cell in report["results"]:
            if cell["accuracy_mean"] is not None and cell["dataset"] not in cells[cell["row"]]:
                cells[cell["row"]][cell["dataset"]] = 100 * cell["accuracy_mean"]
    arms: dict = collections.defaultdict(list)
    for row in cells:
        arms[arm_of(row) if kinds.get(row, "model") == "model" else row].append(row)
    return datasets, cells, arms


def mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def random_row_for(run: Path, rows: set[str]) -> str | None:
    """The random-init row read out as `run` is: `random-init (N blocks, READOUT D-d)`, or plain `random-init`
    when the report evaluated one architecture."""
    from audioembed.config import ModelConfig
    from audioembed.eval.command import architecture_label

    cfg = ModelConfig.load(run / "config.json")
    for labelled in (f"random-init ({architecture_label(cfg, full=True)})", f"random-init ({architecture_label(cfg)})"):
        if labelled in rows:  # the full name where evaluate needed it to tell two architectures apart
            return labelled
    return "random-init" if "random-init" in rows else None


def rule(arm: str, seeds: list[str], reference: str, cells: dict, datasets: list[str],
         runs: Path | None) -> tuple[list[str], bool | None]:
    """The release rule's three conditions for one arm, each a line after the verdict's, and whether it passed
    (None: undecided)."""
    ref = cells[reference]
    per_seed_mean = [statistics.mean(cells[r][d] for d in datasets) for r in seeds]
    mean, spread = mean_std(per_seed_mean)
    ref_mean = statistics.mean(ref[d] for d in datasets)
    lines, ok = [], True
    if spread is None:
        lines.append(f"  mean {mean:.1f} vs {ref_mean:.1f} ({mean - ref_mean:+.1f}); one seed: no spread, undecided")
        ok = None
    else:
        passed = mean - ref_mean > spread
        ok = ok and passed
        lines.append(f"  (1) mean {mean:.1f} vs {ref_mean:.1f}: {mean - ref_mean:+.1f} against a spread of {spread:.1f}: "
                     f"{'pass' if passed else 'FAIL'}")
    for d in datasets:
        m, s = mean_std([cells[r][d] for r in seeds])
        if s is not None:
            passed = m >= ref[d] - s
            ok = ok and passed
            lines.append(f"  (2) {d}: {m:.1f} ± {s:.1f} vs {ref[d]:.1f}: {m - ref[d]:+.1f}: {'pass' if passed else 'FAIL'}")
    random = random_row_for(runs / Path(seeds[0]).name, set(cells)) if runs else None
    if random is None:
        lines.append("  (3) no random-init row read out as this arm is (pass --runs, evaluate with random-init): undecided")
        ok = None if ok is not False else False
    else:
        for d in datasets:
            m = statistics.mean(cells[r][d] for r in seeds)
            passed = m >= cells[random][d]
            ok = ok if passed else False
            # two decimals for the margin: a cell and its random row can round alike and still differ
            lines.append(f"  (3) {d}: {m:.1f} vs {random} {cells[random][d]:.1f}: {m - cells[random][d]:+.2f}: "
                         f"{'pass' if passed else 'FAIL'}")
    verdict = {True: "passes the rule", False: "does not pass the rule", None: "undecided"}[ok]
    return [f"{arm} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}): {verdict}"] + lines, ok


def nearest_seed(seeds: list[str], cells: dict, datasets: list[str]) -> str:
    """The run of an arm to ship: the seed whose per-set accuracies lie nearest (Euclidean) the arm's per-set means,
    so that the released weights are the arm's typical run, not its luckiest."""
    means = {d: statistics.mean(cells[r][d] for r in seeds) for d in datasets}
    return min(seeds, key=lambda r: (sum((cells[r][d] - means[d]) ** 2 for d in datasets), r))


def release(passed: dict[str, list[str]], cells: dict, datasets: list[str]) -> str:
    """Which run ships, fixed before AudioNTT2020 stacked's seeds 43 and 44 were known: among the arms that pass,
    the highest dev-set mean; where another passing arm's mean is within the larger of the two arms' seed spreads
    of it, a negatives arm (`-neg`) before a plain one, since that is the method this package is about. Of the
    chosen arm, the seed nearest its per-set means."""
    if not passed:
        return "release: no arm passes the rule; the reference stays the shipped model"
    stats = {}
    for arm, seeds in passed.items():
        stats[arm] = mean_std([statistics.mean(cells[r][d] for d in datasets) for r in seeds])
    top = max(stats, key=lambda a: stats[a][0])
    close = [a for a in stats if stats[top][0] - stats[a][0] <= max(stats[top][1] or 0, stats[a][1] or 0)]
    arm = max(close, key=lambda a: (a.endswith("-neg"), stats[a][0]))
    run = nearest_seed(passed[arm], cells, datasets)
    return (f"release: {arm} (mean {stats[arm][0]:.1f} ± {stats[arm][1]:.1f}"
            + (f"; within the seeds' spread of {', '.join(a for a in close if a != arm)}" if len(close) > 1 else "")
            + f"), its seed nearest the arm's per-set means: {run}")


def negatives_gain(cells: dict, datasets: list[str]) -> list[str]:
    """Lines stating, per architecture, the negatives arm minus its `--negatives none` twin of the same seed."""
    runs = {Path(r).name: r for r in cells if re.search(r"-s\d+-(neg|none)$", Path(r).name)}
    pairs: dict = collections.defaultdict(list)
    for name, row in sorted(runs.items()):
        twin = runs.get(name[: -len("-neg")] + "-none") if name.endswith("-neg") else None
        if twin and all(d in cells[row] and d in cells[twin] for d in datasets):
            pairs[re.sub(r"-s\d+-neg$", "", name)].append((row, twin))
    lines = []
    for arch, seeds in pairs.items():
        texts = []
        for d in [*datasets, "mean"]:
            diffs = [(statistics.mean(cells[n][x] for x in datasets) - statistics.mean(cells[p][x] for x in datasets))
                     if d == "mean" else cells[n][d] - cells[p][d] for n, p in seeds]
            m, s = mean_std(diffs)
            texts.append(f"{d} {m:+.1f}" + ("" if s is None else f" ± {s:.1f}"))
        lines.append(f"{arch}: negatives minus --negatives none, paired by seed ({len(seeds)} seed"
                     f"{'s' if len(seeds) > 1 else ''}): " + ", ".join(texts))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", type=Path, nargs="+")
    ap.add_argument("--runs", type=Path, help="folder holding the run folders (training probes, architectures)")
    ap.add_argument("--rule", metavar="REFERENCE", help="check each arm of runs against the release rule, REFERENCE "
                    "being the shipped model's row in the report (e.g. models/audioembed-base)")
    args = ap.parse_args()
    datasets, cells, arms = read_reports(args.reports)
    probes: dict = collections.defaultdict(lambda: collections.defaultdict(list))
    if args.runs:
        for cfg in sorted(args.runs.glob("*/config.json")):
            final = record.load(cfg.parent).final
            for key in ("probe_pos", "probe_neg", "probe_shift"):
                if key in final:
                    probes[arm_of(cfg.parent.name)][key].append(final[key])
    keys = ["probe_pos", "probe_neg", "probe_shift"] if probes else []
    print("| arm (seeds) | " + " | ".join(datasets + ["mean"] + keys) + " |")
    print("|---" * (2 + len(datasets) + len(keys)) + "|")
    for arm, rows in arms.items():
        texts = []
        for d in datasets:
            v = [cells[r][d] for r in rows if d in cells[r]]
            m, s = mean_std(v) if v else (None, None)
            texts.append("—" if m is None else f"{m:.1f}" + ("" if s is None else f" ± {s:.1f}"))
        complete = [r for r in rows if all(d in cells[r] for d in datasets)]
        texts.append(f"{statistics.mean(statistics.mean(cells[r][d] for d in datasets) for r in complete):.1f}" if complete else "—")
        for k in keys:
            v = probes[arm][k]
            texts.append(f"{statistics.mean(v):.3f}" if v else "—")
        print(f"| {arm} ({len(rows)}) | " + " | ".join(texts) + " |")
    gains = negatives_gain(cells, datasets)
    if gains:
        print()
        print("\n".join(gains))
    if args.rule:
        if args.rule not in cells:
            sys.exit(f"--rule: no row {args.rule!r} in the report (rows: {', '.join(sorted(cells))})")
        print()
        passed = {}
        for arm, rows in arms.items():
            seeded = [r for r in rows if re.search(r"-s\d+(-|$)", Path(r).name) and all(d in cells[r] for d in datasets)]
            if seeded:
                lines, ok = rule(arm, seeded, args.rule, cells, datasets, args.runs)
                print("\n".join(lines))
                if ok:
                    passed[arm] = seeded
        print()
        print(release(passed, cells, datasets))


if __name__ == "__main__":
    main()
