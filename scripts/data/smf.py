"""Standard MIDI File bytes from timed messages (format 0, one track, 1 tick = 1 ms)."""

import struct


def smf_bytes(events):
    """EVENTS: (time in ms, message bytes) in the order they are to be played."""
    track, now = b"", 0
    for t, msg in events:
        d, vlq = t - now, [(t - now) & 0x7F]  # delta time as a variable-length quantity
        d >>= 7
        while d:
            vlq.insert(0, (d & 0x7F) | 0x80)
            d >>= 7
        track += bytes(vlq) + msg
        now = t
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1000) + b"MTrk" + struct.pack(">I", len(track)) + track
