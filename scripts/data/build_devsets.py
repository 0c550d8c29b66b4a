#!/usr/bin/env python3
"""Build labelled development sets (16 kHz mono WAV, OUT/<set>/<label>/*.wav
plus OUT/<set>/manifest.csv with at least the columns path,label).

Sets (their packages are never used by build_corpus.py):
  gm_family  GM instrument family (16 classes) of single notes rendered with
             fluidsynth from fluid-soundfont-gm (FluidR3_GM.sf2)
  gm_pitch   pitch class (12 classes) of the same renders, pitched programs
             0-111 only (hard links to the gm_family files)
  ktuberling_lang  spoken-word language (one class per language) from
             ktuberling-data
  zeroad_sfx game sound-effect category (impacts, weapons, animals, footsteps,
             ...) from 0ad-data; the corpus uses 0ad-data too but skips
             exactly these files (debaudio.ZEROAD_HELDOUT)

Example:  nice -n 10 python3 scripts/data/build_devsets.py --out DATA/devsets
"""
import argparse
import csv
import glob
import os
import random
import re
import shutil
import subprocess
import sys
import zipfile
from collections import defaultdict

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debaudio as da  # noqa: E402
from smf import smf_bytes  # noqa: E402

FAMILIES = ["piano", "chromatic_percussion", "organ", "guitar", "bass", "strings",
            "ensemble", "brass", "reed", "pipe", "synth_lead", "synth_pad",
            "synth_effects", "ethnic", "percussive", "sound_effects"]  # GM program // 8
PITCH_CLASSES = ["C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B"]
LOW_PROGRAMS = set(range(32, 40)) | {42, 57, 58, 67, 70}  # basses, cello, tuba, ...
# octave bases (C notes) to draw from; FluidR3's contrabass (43) is silent above ~D4
BASES = {p: [36, 48, 60] for p in LOW_PROGRAMS} | {43: [36, 48]}
NOTE_MS, GAP_MS, CLIP_S, LEAD_MS = 1000, 3000, 1.5, 500


def write_licence(out, pkg, root, what):
    cp = da.copyright_path(root, pkg)
    lic = da.licence(cp)
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "LICENCE.txt"), "w").write(f"{what} Licence: {lic}\n"
                                                       "Full terms: debian-copyright.txt\n")
    if os.path.exists(cp):
        shutil.copy(cp, os.path.join(out, "debian-copyright.txt"))
    return lic


# Folds by program: the 12 notes of one instrument never sit on both sides of a split, so a
# probe cannot score by recognising the instrument (random k-fold leaks it: random-init's
# gm_family accuracy drops from 72 % to 41 % once programs are kept apart).
GM_FOLDS = 5


def write_done(path, rows, header):
    with open(path + ".tmp", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    os.replace(path + ".tmp", path)


def midi_file(program, notes):
    """Format-0 MIDI, 1 tick = 1 ms: program change, then each (note, velocity)
    held NOTE_MS, followed by 'all sound off' so no tail leaks into the next clip."""
    ev = [(0, bytes([0xFF, 0x51, 3]) + (1000000).to_bytes(3, "big")),  # tempo 1 s / quarter
          (0, bytes([0xC0, program]))]
    for i, (note, vel) in enumerate(notes):
        t = LEAD_MS + i * GAP_MS
        ev += [(t, bytes([0x90, note, vel])), (t + NOTE_MS, bytes([0x80, note, 0])),
               (t + int(CLIP_S * 1000) + 200, bytes([0xB0, 120, 0]))]
    ev.append((LEAD_MS + len(notes) * GAP_MS, bytes([0xFF, 0x2F, 0])))
    return smf_bytes(sorted(ev, key=lambda e: e[0]))


def build_gm(args):
    fam_dir, pitch_dir = os.path.join(args.out, "gm_family"), os.path.join(args.out, "gm_pitch")
    if os.path.exists(os.path.join(fam_dir, "manifest.csv")) and \
            os.path.exists(os.path.join(pitch_dir, "manifest.csv")):
        print("[skip] gm_family, gm_pitch: done")
        return
    if not shutil.which("fluidsynth"):
        raise SystemExit("fluidsynth not found: apt-get install fluidsynth")
    pkg = "fluid-soundfont-gm"
    root = da.extract(pkg, da.fetch_deb(pkg, args.debs), os.path.join(args.work, pkg), ["*.sf2"])
    sf2 = glob.glob(os.path.join(root, "**", "FluidR3_GM.sf2"), recursive=True)[0]
    lic = da.licence(da.copyright_path(root, pkg))
    rng = random.Random(args.seed)
    tmp = os.path.join(args.work, "gm_render")
    os.makedirs(tmp, exist_ok=True)
    fam_rows, pitch_rows = [], []
    for prog in range(128):
        bases = BASES.get(prog, [48, 60, 72])
        notes = [(rng.choice(bases) + pc, rng.choice([70, 100, 127])) for pc in range(12)]
        mid, wav = os.path.join(tmp, f"p{prog:03d}.mid"), os.path.join(tmp, f"p{prog:03d}.wav")
        if not os.path.exists(wav):
            open(mid, "wb").write(midi_file(prog, notes))
            subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
                            "-r", str(da.SR), "-F", wav + ".part.wav", sf2, mid],
                           check=True, stdout=subprocess.DEVNULL)
            os.replace(wav + ".part.wav", wav)
        x, sr = sf.read(wav, dtype="float32", always_2d=True)
        assert sr == da.SR, sr
        x = x.mean(axis=1)
        fam = FAMILIES[prog // 8]
        for i, (note, vel) in enumerate(notes):
            s = int((LEAD_MS + i * GAP_MS) / 1000 * da.SR)
            clip = x[s:s + int(CLIP_S * da.SR)]
            if da.is_silent(clip, -60):
                print(f"  [warn] silent: program {prog} note {note}")
                continue
            clip = 0.9 * clip / np.abs(clip).max()  # peak-normalise
            name = f"p{prog:03d}_n{note:03d}_v{vel:03d}.wav"
            rel = os.path.join(fam, name)
            os.makedirs(os.path.join(fam_dir, fam), exist_ok=True)
            sf.write(os.path.join(fam_dir, rel), clip, da.SR, subtype="PCM_16")
            fam_rows.append([rel, fam, prog, note, vel, prog % GM_FOLDS])
            if prog < 112:  # pitched programs only
                pc = PITCH_CLASSES[note % 12]
                dst = os.path.join(pitch_dir, pc, name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if os.path.exists(dst):
                    os.remove(dst)
                os.link(os.path.join(fam_dir, rel), dst)
                pitch_rows.append([os.path.join(pc, name), pc, note // 12 - 1, prog, FAMILIES[prog // 8], vel, prog % GM_FOLDS])
    write_done(os.path.join(fam_dir, "manifest.csv"), fam_rows,
               ["path", "label", "program", "note", "velocity", "fold"])
    write_done(os.path.join(pitch_dir, "manifest.csv"), pitch_rows,
               ["path", "label", "octave", "program", "family", "velocity", "fold"])
    for d in (fam_dir, pitch_dir):
        write_licence(d, pkg, root, f"Rendered with fluidsynth from {pkg} (FluidR3_GM.sf2).")
    print(f"[done] gm_family: {len(fam_rows)} clips; gm_pitch: {len(pitch_rows)} clips; licence: {lic}")


def build_ktuberling(args):
    out = os.path.join(args.out, "ktuberling_lang")
    if os.path.exists(os.path.join(out, "manifest.csv")):
        print("[skip] ktuberling_lang: done")
        return
    pkg = "ktuberling-data"
    root = da.extract(pkg, da.fetch_deb(pkg, args.debs), os.path.join(args.work, pkg),
                      ["*/sounds/*"])
    lic = da.licence(da.copyright_path(root, pkg))
    by_lang = defaultdict(dict)  # lang -> stem -> file (one file per word)
    for p in sorted(glob.glob(os.path.join(root, "usr/share/ktuberling/sounds/*/*"))):
        if re.search(r"\.(ogg|opus|wav)$", p):
            lang = os.path.basename(os.path.dirname(p))
            by_lang[lang].setdefault(os.path.splitext(os.path.basename(p))[0], p)
    langs = sorted(l for l, w in by_lang.items() if len(w) >= args.min_per_lang)
    rng, rows = random.Random(args.seed), []
    for lang in langs:
        stems = sorted(by_lang[lang])
        rng.shuffle(stems)
        n = 0
        for stem in stems:
            if n >= args.max_per_lang:
                break
            x = da.load_16k_mono(by_lang[lang][stem])
            if da.is_silent(x):
                continue
            nz = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())  # trim silence
            x = x[nz[0]:nz[-1] + 1][:5 * da.SR]
            if x.size < da.SR // 2:
                x = np.pad(x, (0, da.SR // 2 - x.size))
            rel = os.path.join(lang, da.safe_name(stem) + ".wav")
            os.makedirs(os.path.join(out, lang), exist_ok=True)
            sf.write(os.path.join(out, rel), x, da.SR, subtype="PCM_16")
            rows.append([rel, lang, stem])
            n += 1
    write_done(os.path.join(out, "manifest.csv"), rows, ["path", "label", "word"])
    write_licence(out, pkg, root, f"From {pkg}.")
    print(f"[done] ktuberling_lang: {len(rows)} clips, {len(langs)} languages; licence: {lic}")


def build_zeroad(args):
    out = os.path.join(args.out, "zeroad_sfx")
    if os.path.exists(os.path.join(out, "manifest.csv")):
        print("[skip] zeroad_sfx: done")
        return
    pkg, zpath = "0ad-data", "usr/share/games/0ad/mods/public/public.zip"
    root = da.extract(pkg, da.fetch_deb(pkg, args.debs), os.path.join(args.work, pkg), ["*public.zip"])
    lic = da.licence(da.copyright_path(root, pkg))
    rng, rows = random.Random(args.seed), []
    with zipfile.ZipFile(os.path.join(root, zpath)) as z:
        by_label = defaultdict(list)
        for name in sorted(z.namelist()):
            label = next((c for rx, c in da.ZEROAD_HELDOUT if re.search(rx, name)), None)
            if label and name.endswith(".ogg"):
                by_label[label].append(name)
        for label, names in sorted(by_label.items()):
            rng.shuffle(names)
            n = 0
            for name in names:
                if n >= args.max_per_class:
                    break
                x = da.load_16k_mono(z.read(name))
                if da.is_silent(x):
                    continue
                x = x[:5 * da.SR]
                if x.size < da.SR // 2:
                    x = np.pad(x, (0, da.SR // 2 - x.size))
                rel = os.path.join(label, da.safe_name(name[len("audio/"):-4]) + ".wav")
                os.makedirs(os.path.join(out, label), exist_ok=True)
                sf.write(os.path.join(out, rel), x, da.SR, subtype="PCM_16")
                rows.append([rel, label, name])
                n += 1
    write_done(os.path.join(out, "manifest.csv"), rows, ["path", "label", "source_file"])
    write_licence(out, pkg, root, f"From {pkg} (public.zip).")
    print(f"[done] zeroad_sfx: {len(rows)} clips; licence: {lic}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output root (e.g. DATA/devsets)")
    ap.add_argument("--debs", default=None, help=".deb cache (default OUT/../debs)")
    ap.add_argument("--work", default=None, help="scratch dir (default OUT/_work)")
    ap.add_argument("--sets", nargs="*", default=["gm", "ktuberling_lang", "zeroad_sfx"],
                    help="gm (= gm_family + gm_pitch), ktuberling_lang, zeroad_sfx")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-per-lang", type=int, default=60, help="keep languages with >= N words")
    ap.add_argument("--max-per-lang", type=int, default=80, help="cap clips per language")
    ap.add_argument("--max-per-class", type=int, default=80, help="cap clips per zeroad_sfx class")
    ap.add_argument("--keep-work", action="store_true", help="keep unpacked packages/renders")
    args = ap.parse_args()
    args.debs = args.debs or os.path.join(os.path.dirname(os.path.abspath(args.out)), "debs")
    args.work = args.work or os.path.join(args.out, "_work")
    builders = {"gm": build_gm, "ktuberling_lang": build_ktuberling, "zeroad_sfx": build_zeroad}
    for s in args.sets:
        builders[s](args)
    if not args.keep_work:
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
