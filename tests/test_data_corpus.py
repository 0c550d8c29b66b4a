"""build_corpus.py's output names: two source files of a package never share a FLAC path."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "data"))
import build_corpus as bc  # noqa: E402


def test_output_stems_stay_unique_when_names_collapse():
    used = set()
    rels = ["usr/share/gcin-voice/ogg/ㄅ/3.ogg", "usr/share/gcin-voice/ogg/ㄆ/3.ogg",
            "usr/share/games/x/sounds/grow.ogg", "usr/share/games/x/sounds/grow.wav"]
    stems = [bc.unique_stem(r, used) for r in rels]
    assert len(set(stems)) == len(rels)
    assert stems[2] == "games_x_sounds_grow"  # names that do not collide keep their plain form
    assert all(s.isascii() and "/" not in s for s in stems)
    assert bc.unique_stem(rels[1], set()) == bc.unique_stem(rels[1], {"other"})  # deterministic


def test_solo_phrases_stay_in_range_fill_their_slot_and_write_valid_midi():
    import random
    import struct

    import phrases

    for program in (0, 33, 42, 73, 115):
        lo, hi = phrases.program_range(program)
        notes = phrases.phrase(random.Random(program), program, 6.0)
        assert notes and all(lo <= n <= hi and 0 < v < 128 for _, _, n, v in notes)
        assert all(0 <= t and t + d <= 6.0 for t, d, _, _ in notes)
        assert notes == phrases.phrase(random.Random(program), program, 6.0)  # deterministic
    groups = [phrases.phrase(random.Random(k), 40, 6.0) for k in range(3)]
    data = phrases.midi_bytes(40, groups, 7.0)
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 1000)
    assert data[14:18] == b"MTrk" and struct.unpack(">I", data[18:22])[0] == len(data) - 22
    track = data[22:]
    assert track.count(bytes([0xC0, 40])) == 1 and track.endswith(bytes([0xFF, 0x2F, 0]))
    # every note on has its note off: walk the events
    pos, ons, offs, now, last = 0, 0, 0, 0, 0
    while pos < len(track):
        delta = 0
        while True:
            byte = track[pos]
            pos += 1
            delta = (delta << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        now += delta
        status = track[pos]
        if status == 0xFF:
            pos += 3 + track[pos + 2]
        elif status == 0xC0:
            pos += 2
        else:
            ons += status == 0x90
            offs += status == 0x80
            pos += 3
        last = now
    assert ons == offs == sum(len(g) for g in groups)
    assert last == 3 * 7000  # the end of track after the last slot
