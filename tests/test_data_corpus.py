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
