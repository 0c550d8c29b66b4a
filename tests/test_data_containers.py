"""The corpus builder's container readers (scripts/data/containers.py) on small containers built here."""

from __future__ import annotations

import io
import os
import struct
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "data"))
import containers as ct  # noqa: E402
import debaudio as da  # noqa: E402


def wav_bytes(x, sr=8000):
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def tone(n=800, f=440.0, sr=8000):
    return (0.5 * np.sin(2 * np.pi * f * np.arange(n) / sr)).astype(np.float32)


def items(reader, root):
    """Every item, loaded only after the reader has gone through all files (as a caller may)."""
    return {rel: load() for rel, load in list(reader(str(root)))}


def test_queen_table_reads_entries_and_clips(tmp_path):
    clips = [(b"A1.SB", b"mp3-one"), (b"B2.SAM", b"sam"), (b"C3.SB", b"mp3-three!")]
    table = b"QTBL" + b"CEM10\0" + b"\0\0" + b"\x01" + struct.pack(">H", len(clips))
    off, body, entries = 15 + 21 * len(clips), b"", b""
    for name, data in clips:
        entries += name.ljust(12, b"\0") + b"\x01" + struct.pack(">II", off + len(body), len(data))
        body += data
    (tmp_path / "queen.1c").write_bytes(table + entries + body)
    got = items(ct.queen_1c(), tmp_path)
    assert got == {"queen.1c/A1.SB": b"mp3-one", "queen.1c/C3.SB": b"mp3-three!"}


@pytest.mark.parametrize("data, msg", [(b"NOPE" + bytes(20), "no QTBL"),
                                       (b"QTBL" + bytes(8) + b"\x00" + bytes(2), "not 1 \\(MP3\\)")])
def test_queen_table_rejects_other_files(data, msg):
    with pytest.raises(ValueError, match=msg):
        ct.queen_table(data, "x/queen.1c")


def test_queen_table_rejects_entry_past_end():
    data = b"QTBL" + bytes(8) + b"\x01" + struct.pack(">H", 1) + b"X.SB".ljust(13, b"\0") + struct.pack(">II", 10, 999)
    with pytest.raises(ValueError, match="past the end"):
        ct.queen_table(data, "q.1c")


def test_drascula_als_is_u8_after_32_byte_header_and_skips_links(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "es").mkdir()
    samples = np.array([128, 255, 0, 128], dtype=np.uint8)
    (tmp_path / "en" / "1.ALS").write_bytes(b"\xAA" * 32 + samples.tobytes())
    os.symlink("../en/1.ALS", tmp_path / "es" / "1.ALS")
    got = items(ct.drascula_als(), tmp_path)
    assert list(got) == ["en/1.ALS"]
    x, sr = got["en/1.ALS"]
    assert sr == 11025
    np.testing.assert_allclose(x, [0, 127 / 128, -1, 0])


def test_raw_pcm_reads_interleaved_stereo_where_named(tmp_path):
    (tmp_path / "mono.raw").write_bytes(np.array([128, 255, 0], dtype=np.uint8).tobytes())
    (tmp_path / "st.raw").write_bytes(np.array([128, 0, 255, 255, 0], dtype=np.uint8).tobytes())
    got = items(ct.raw_pcm(r"\.raw$", 22050, "u1", stereo=r"/st\.raw$"), tmp_path)
    (m, sr), (s, _) = got["mono.raw"], got["st.raw"]
    assert sr == 22050 and m.shape == (3,) and s.shape == (2, 2)  # odd trailing byte dropped
    np.testing.assert_allclose(s, [[0, -1], [127 / 128, 127 / 128]])
    x = da.load_16k_mono((s, 16000))
    np.testing.assert_allclose(x, [-0.5, 127 / 128], atol=1e-6)


def test_files_reads_identical_copies_once(tmp_path):
    (tmp_path / "a.ogg").write_bytes(b"same")
    (tmp_path / "b.ogg").write_bytes(b"same")
    (tmp_path / "c.ogg").write_bytes(b"other")
    (tmp_path / "d.txt").write_bytes(b"text")
    assert sorted(items(ct.files(), tmp_path)) == ["a.ogg", "c.ogg"]


def test_zips_yields_audio_members_below_the_archive_path(tmp_path):
    with zipfile.ZipFile(tmp_path / "data.pk3", "w") as z:
        z.writestr("sound/misc/a.wav", b"wav")
        z.writestr("maps/x.bsp", b"map")
    assert items(ct.zips(r"\.pk3$"), tmp_path) == {"data.pk3/sound/misc/a.wav": b"wav"}


def test_riff_wavs_finds_whole_wavs_inside_a_blob(tmp_path):
    w1, w2 = wav_bytes(tone()), wav_bytes(tone(400))
    (tmp_path / "sfx.cat").write_bytes(b"head RIFF? " + w1 + b"\0" * 7 + w2 + b"RIFF" + b"\xff" * 8)
    (tmp_path / "tail.cat").write_bytes(b"RIFF" + bytes(12))  # loaded after both files are read
    got = items(ct.riff_wavs(r"\.cat$"), tmp_path)
    assert got == {"sfx.cat/0000.wav": w1, "sfx.cat/0001.wav": w2}
    assert da.load_16k_mono(got["sfx.cat/0001.wav"]).size == 800


def wad(lumps):
    body, dirs, pos = b"", b"", 12
    for name, data in lumps:
        dirs += struct.pack("<ii8s", pos + len(body), len(data), name)
        body += data
    return b"IWAD" + struct.pack("<ii", len(lumps), 12 + len(body)) + body + dirs


def test_wad_lumps_and_dmx_sound(tmp_path):
    samples = np.array([128, 192, 64, 128], dtype=np.uint8)
    dmx = struct.pack("<HHI", 3, 11025, len(samples) + 32) + b"\x80" * 16 + samples.tobytes() + b"\x80" * 16
    data = wad([(b"PLAYPAL", b"pal"), (b"DSPISTOL", dmx), (b"D_E1M1", b"MUS\x1a...")])
    assert [n for n, _ in ct.wad_lumps(data)] == ["PLAYPAL", "DSPISTOL", "D_E1M1"]
    (tmp_path / "sf.sf2").write_bytes(b"font")
    (tmp_path / "doom.wad").write_bytes(data)
    got = items(ct.doom_wad(soundfont=r"sf\.sf2$"), tmp_path)
    assert list(got) == ["doom.wad/DSPISTOL.dmx"]  # the MUS-format music lump is not MIDI: skipped
    x, sr = got["doom.wad/DSPISTOL.dmx"]
    assert sr == 11025
    np.testing.assert_allclose(x, [0, 0.5, -0.5, 0])


def test_wad_lumps_rejects_other_files():
    with pytest.raises(ValueError, match="not a Doom WAD"):
        list(ct.wad_lumps(b"PK\x03\x04" + bytes(12), "x.wad"))


def test_midi_without_sound_font_says_what_to_do(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"MThd")
    with pytest.raises(FileNotFoundError, match="EXTRA"):
        list(ct.midi()(str(tmp_path)))


def test_load_16k_mono_takes_decoded_samples():
    x = da.load_16k_mono((np.ones((8000, 2), np.float32) * 0.25, 8000))
    assert x.dtype == np.float32 and x.size == 16000
    assert abs(float(x[4000:12000].mean()) - 0.25) < 1e-3


def c4group_bytes(entries):
    """An OpenClonk group: scrambled 204-byte header, 316-byte entries, then the data."""
    h = bytearray(b"RedWolf Design GrpFolder".ljust(28, b"\0") + struct.pack("<iii", 1, 2, len(entries)) + bytes(164))
    h[0:-2:3], h[2::3] = h[2::3], h[0:-2:3]
    h = bytes(b ^ 237 for b in h)
    table, body = b"", b""
    for name, data, child in entries:
        table += name.encode().ljust(260, b"\0") + struct.pack("<iiiii", 0, child, len(data), 0, len(body)) + bytes(36)
        body += data
    return h + table + body


def test_c4group_reads_packed_nested_groups(tmp_path):
    import gzip
    wav = wav_bytes(tone())
    inner = c4group_bytes([("Bat.wav", wav, 0)])
    outer = c4group_bytes([("Animals.ocg", inner, 1), ("Boom.ogg", b"ogg!", 0), ("Info.txt", b"x", 0)])
    (tmp_path / "Sound.ocg").write_bytes(b"\x1e\x8c" + gzip.compress(outer)[2:])
    got = items(ct.c4group(r"/Sound\.ocg$"), tmp_path)
    assert got == {"Sound.ocg/Animals.ocg/Bat.wav": wav, "Sound.ocg/Boom.ogg": b"ogg!"}
    assert abs(da.load_16k_mono(got["Sound.ocg/Animals.ocg/Bat.wav"]).size - 1600) <= 1
    with pytest.raises(ValueError, match="not an OpenClonk group"):
        list(ct.c4group_entries(b"\0" * 300, "x.ocg"))
