"""Solo-instrument phrases of every General MIDI program, rendered by fluidsynth: a corpus source.

The corpus's music is mostly mixes (game soundtracks, tracker modules, MIDI songs), where an
instrument is rarely heard alone. This source adds short solo phrases of each of the 128 General
MIDI programs: random melodies on a random scale in the program's usual range, random rhythm and
dynamics, now and then a two-note chord. It is rendered with the TimGM6mb sound font (the package
`timgm6mb-soundfont`, GPL-2, the corpus's MIDI font), never with fluid-soundfont-gm (the dev sets'
font) nor with a reserved package.
"""

from __future__ import annotations

import os
import random
import subprocess

import containers as ct
import soundfile as sf
from smf import smf_bytes

SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9), (0, 3, 5, 7, 10), (0, 2, 3, 5, 7, 9, 10))
GAP_S = 1.0  # silence after each phrase, so no release tail runs into the next one


def program_range(program: int) -> tuple[int, int]:
    """MIDI note range a program is usually played in (General MIDI's families by program // 8)."""
    family = program // 8
    if family == 4:  # bass
        return 28, 55
    if program in (42, 43, 57, 58, 67, 70):  # cello, contrabass, trombone, tuba, baritone sax, bassoon
        return 36, 64
    if family in (9, 10):  # reed, pipe (the low ones are above): saxes, oboe, clarinet, flutes sit higher
        return 55, 88
    if family == 14:  # percussive (tinkle bell .. reverse cymbal)
        return 45, 81
    return 43, 84


def phrase(rng: random.Random, program: int, seconds: float) -> list[tuple[float, float, int, int]]:
    """(start s, length s, note, velocity) of one phrase filling `seconds`."""
    lo, hi = program_range(program)
    root = rng.randint(lo, min(hi, lo + 12))
    scale = rng.choice(SCALES)
    notes_in = [root + 12 * o + d for o in range(-1, 5) for d in scale if lo <= root + 12 * o + d <= hi]
    beat = 60.0 / rng.uniform(70, 160)
    legato = rng.uniform(0.5, 1.0)
    pos = rng.randrange(len(notes_in))
    t, out = 0.0, []
    while True:
        dur = beat * rng.choice((0.5, 0.5, 1, 1, 1, 2))
        if t + dur > seconds:
            break
        pos = min(max(pos + rng.choice((-2, -1, -1, 0, 1, 1, 2, 3, -3)), 0), len(notes_in) - 1)
        vel = rng.randint(45, 120)
        out.append((t, dur * legato, notes_in[pos], vel))
        if rng.random() < 0.15 and pos + 2 < len(notes_in):  # a third or so above
            out.append((t, dur * legato, notes_in[pos + 2], vel))
        t += dur
    return out


def midi_bytes(program: int, phrases: list[list[tuple[float, float, int, int]]], slot_s: float) -> bytes:
    """Format-0 MIDI, 1 tick = 1 ms, channel 0: phrase k starts at k * slot_s seconds."""
    ev = [(0, 0, bytes([0xFF, 0x51, 3]) + (1000000).to_bytes(3, "big")), (0, 0, bytes([0xC0, program]))]
    for k, notes in enumerate(phrases):
        base = int(k * slot_s * 1000)
        for start, length, note, vel in notes:
            on = base + int(start * 1000)
            ev += [(on, 1, bytes([0x90, note, vel])), (on + max(1, int(length * 1000)), 0, bytes([0x80, note, 0]))]
    end = int(len(phrases) * slot_s * 1000)
    ev.append((end, 2, bytes([0xFF, 0x2F, 0])))
    return smf_bytes([(t, msg) for t, _, msg in sorted(ev, key=lambda e: (e[0], e[1]))])  # offs, ons, then the end


def solo_phrases(per_program: int = 16, seconds: float = 6.0, seed: int = 0, programs=range(128)):
    """A build_corpus reader: (path, load) per phrase, `program037/phrase05.mid` style paths; load gives
    (samples, 16000). Each program's phrases are rendered in one fluidsynth call, when first loaded."""

    def read(root):
        render = ct._fluidsynth(root, ct.SOUNDFONT)
        rng = random.Random(seed)
        slot = seconds + GAP_S
        for program in programs:
            phrases = [phrase(rng, program, seconds) for _ in range(per_program)]
            cache: dict = {}

            def audio(program=program, phrases=phrases, cache=cache):
                if "x" not in cache:
                    src = os.path.join(root, f"_solo{program:03d}.mid")
                    open(src, "wb").write(midi_bytes(program, phrases, slot))
                    render(src, src + ".wav")
                    x, sr = sf.read(src + ".wav", dtype="float32", always_2d=True)
                    os.remove(src)
                    os.remove(src + ".wav")
                    assert sr == 16000, sr
                    cache["x"] = x.mean(axis=1)
                return cache["x"]

            for k in range(per_program):
                a, b = int(k * slot * 16000), int((k * slot + seconds + 0.5 * GAP_S) * 16000)
                yield f"program{program:03d}/phrase{k:02d}.mid", (lambda a=a, b=b, audio=audio: (audio()[a:b], 16000))

    return read


if __name__ == "__main__":  # listen: python scripts/data/phrases.py SF2 PROGRAM OUT.wav
    import sys

    sf2, program, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(0)
    data = midi_bytes(program, [phrase(rng, program, 6.0) for _ in range(3)], 7.0)
    open(out + ".mid", "wb").write(data)
    subprocess.run(["fluidsynth", "-ni", "-q", "-F", out, "-r", "16000", "-R", "0", "-C", "0", sf2, out + ".mid"], check=True)
    print(out, f"{sf.info(out).duration:.1f} s")
