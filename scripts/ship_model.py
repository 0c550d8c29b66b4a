"""Copy a trained model folder into models/ and complete its card with the corpus and the evaluation.

    python scripts/ship_model.py runs/audioembed-base --ablation runs/audioembed-byola \
        --evaluation runs/evaluation.md --corpus DATA/corpus --notes notes.md --out models/audioembed-base

The weights are copied byte for byte (config.json's sha256 of them stay valid); config.json is copied
with the training folder reduced to its name (no path of the training machine) and the model named
after OUT; README.md is the card audioembed.card writes from that config, plus: the corpus by package
with licences, the evaluation table (the Markdown `audioembed evaluate` printed), the ablation's
training facts, and free-form notes, under Hub metadata written by audioembed.card (the one card writer).
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import shutil
from pathlib import Path

from audioembed import card as model_card
from audioembed import record
from audioembed.config import ModelConfig
from audioembed.model_folder import CONFIG, WEIGHT_FILES


def corpus_section(corpus: Path) -> str:
    hours: dict = collections.defaultdict(lambda: collections.defaultdict(float))
    licence = {}
    with open(corpus / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            hours[row["source_package"]][row["category"]] += float(row["duration_s"]) / 3600
            licence[row["source_package"]] = row["licence"]
    total = collections.Counter()
    lines = ["| Debian package (bookworm, main) | music h | speech h | sfx h | licence (its copyright file) |", "|---|---|---|---|---|"]
    for pkg, cats in sorted(hours.items(), key=lambda kv: -sum(kv[1].values())):
        total.update(cats)
        cells = " | ".join(f"{cats[c]:.2f}" if cats.get(c) else "" for c in ("music", "speech", "sfx"))
        lines.append(f"| {pkg} | {cells} | {licence[pkg]} |")
    head = (f"{sum(total.values()):.1f} h of real audio recorded or produced by others (music {total['music']:.1f} h, "
            f"speech {total['speech']:.1f} h, environmental/mechanical/animal/UI sounds {total['sfx']:.1f} h), "
            "from Debian packages, rebuilt from nothing by `scripts/data/build_corpus.py` (16 kHz mono FLAC chunks "
            "of at most 30 s). The held-out packages reserved for evaluation (asterisk-*, hydrogen-drumkits*, "
            "musescore-general-soundfont*) and the dev sets' sources are not in it.")
    note = ("The audio is under the licences above (GPL-2/3, CC-BY-SA-3.0, GFDL-1.3, MIT, CC0; full copyright "
            "files in the corpus's `licences/`). Whether trained weights are a derivative work of their training "
            "data is unsettled; we list every source so users can decide, and credit the authors of these games "
            "and sample packs: Warzone 2100, 0 A.D., Battle for Wesnoth, Hedgewars, Fish Fillets NG, SuperTux, "
            "MegaGlest, FreedroidRPG, KLettres, Frozen Bubble and Sonic Pi.")
    return "\n".join(["## Training data", "", head, "", *lines, "", note])


def ablation_section(folder: Path) -> str:
    t = record.load(folder).training
    return (f"The ablation `{folder.name}` (`--negatives none`, plain BYOL-A) was trained with the same corpus, "
            f"seed, batch, steps ({t['steps']}) and views: {t['train_seconds'] / 60:.1f} min, "
            f"{t['samples_per_s']} samples/s.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--ablation", type=Path)
    ap.add_argument("--evaluation", type=Path, required=True, help="Markdown table printed by audioembed evaluate")
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--notes", type=Path, help="Markdown appended under the evaluation")
    ap.add_argument("--out", type=Path, default=Path("models/audioembed-base"))
    ap.add_argument("--license", default="other",
                    help="Hub licence id for the weights (default: other; the card lists the training data's licences)")
    ap.add_argument("--dataset", action="append", default=[], help="a Hub dataset id the model was trained on (repeatable)")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    for name in WEIGHT_FILES:
        shutil.copyfile(args.model / name, args.out / name)
    cfg = ModelConfig.load(args.model / CONFIG)
    rec = record.load(args.model)
    data = dict(rec.data)
    if "data_dir" in data:  # runs exported before pretrain kept only the folder's name held the training machine's path
        data["data_dir"] = Path(data["data_dir"]).name
    rec = dataclasses.replace(rec, data=data)
    # a snapshot is named after its run; the release after its folder. config.json: inference only; training.json: the rest.
    cfg = dataclasses.replace(cfg, name=args.out.name, extra=rec.to_dict())
    cfg.save(args.out / CONFIG)
    record.save(args.out, rec)
    card = model_card.body(cfg, rec.history).strip("\n")
    files_at = card.index("## Files")
    parts = [card[:files_at].rstrip("\n"), "", corpus_section(args.corpus), "",
             "## Evaluation", "", "Linear probe (`audioembed evaluate`, see docs/evaluate.md) on the development sets:", "",
             args.evaluation.read_text().strip()]
    if args.ablation:
        parts += ["", ablation_section(args.ablation)]
    if args.notes:
        parts += ["", args.notes.read_text().strip()]
    parts += ["", card[files_at:], ""]
    model_card.write(args.out, "\n".join(parts), license=args.license, datasets=args.dataset)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
