"""Readers for the places audio hides in Debian packages (pure Python/numpy).

A reader is a function `read(root)` that yields `(relative path, load)` for
every audio item of an unpacked package; `load()` returns a file path, the
encoded bytes, or `(samples float32, sample rate)` for raw PCM
(`debaudio.load_16k_mono` takes all three).
"""
import gzip
import hashlib
import os
import re
import struct
import subprocess
import zipfile

import numpy as np

AUDIO = r"\.(ogg|oga|opus|wav|flac|mp3)$"


def _walk(root, rx):
    """Regular files (no symlinks: those point at audio counted elsewhere) whose
    path below ROOT matches RX, sorted."""
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            if re.search(rx, "/" + rel, re.I) and os.path.isfile(p) and not os.path.islink(p):
                yield rel, p


def files(rx=AUDIO):
    """Audio files on disk whose path matches RX; identical copies are read once."""
    def read(root):
        seen = set()
        for rel, p in _walk(root, rx):
            h = hashlib.sha1(open(p, "rb").read()).digest()
            if h not in seen:
                seen.add(h)
                yield rel, (lambda p=p: p)
    return read


def zips(rx, member_rx=AUDIO):
    """Members matching MEMBER_RX of every zip archive (.zip, .pk3, .wz) whose
    path matches RX. The path is `archive path/member`."""
    def read(root):
        for rel, p in _walk(root, rx):
            z = zipfile.ZipFile(p)  # stays open while loaders refer to it
            for name in sorted(z.namelist()):
                if re.search(member_rx, name, re.I):
                    yield f"{rel}/{name}", (lambda n=name, z=z: z.read(n))
    return read


def raw_pcm(rx, sr, dtype, header=0, stereo=None):
    """Headerless PCM files (after HEADER bytes): unsigned 8-bit (`u1`, centred
    on 128) or signed little-endian 16-bit (`<i2`), mono at SR Hz; files whose
    path matches the regex STEREO hold interleaved left/right samples."""
    def load(p, channels):
        x = np.frombuffer(open(p, "rb").read()[header:], dtype=dtype).astype(np.float32)
        x = (x - 128) / 128 if dtype == "u1" else x / 32768
        return (x if channels == 1 else x[:x.size // channels * channels].reshape(-1, channels)), sr

    def read(root):
        for rel, p in _walk(root, rx):
            channels = 2 if stereo and re.search(stereo, "/" + rel) else 1
            yield rel, (lambda p=p, c=channels: load(p, c))
    return read


# Drascula speech/effects (.ALS): 32-byte header, then unsigned 8-bit mono at 11025 Hz.
def drascula_als(rx=r"\.als$"):
    return raw_pcm(rx, 11025, "u1", header=32)


def queen_table(data, path="queen.1c"):
    """Entries (name, offset, size) of a Flight of the Amazon Queen resource file
    rebuilt for ScummVM (`queen.1c`): "QTBL", 6-byte version, 2 bytes, a
    compression byte (1 = MP3), a big-endian 16-bit entry count, then 21-byte
    entries: 12-byte name, bundle byte, offset and size (big-endian 32-bit,
    offsets from the start of the file)."""
    if data[:4] != b"QTBL" or len(data) < 15:
        raise ValueError(f"{path}: no QTBL resource table at the start; expected the ScummVM "
                         "rebuilt queen.1c of flight-of-the-amazon-queen")
    if data[12] != 1:
        raise ValueError(f"{path}: sound compression {data[12]} is not 1 (MP3); only the "
                         "MP3 build is supported")
    n = struct.unpack(">H", data[13:15])[0]
    out = []
    for i in range(n):
        e = data[15 + 21 * i:36 + 21 * i]
        off, size = struct.unpack(">II", e[13:21])
        if off + size > len(data):
            raise ValueError(f"{path}: entry {i} ends at {off + size}, past the end of the file")
        out.append((e[:12].rstrip(b"\0").decode("latin-1"), off, size))
    return out


def queen_1c(rx=r"queen\.1c$", names=r"\.SB$"):
    """The MP3 clips (`*.SB`: spoken lines) of queen.1c. (`*.SAM` are not MP3.)"""
    def read(root):
        for rel, p in _walk(root, rx):
            data = open(p, "rb").read()
            for name, off, size in queen_table(data, p):
                if re.search(names, name, re.I):
                    yield f"{rel}/{name}", (lambda d=data, o=off, s=size: d[o:o + s])
    return read



def _rendered(rx, render, out_suffix):
    """Files matching RX turned into WAV by RENDER(src, dst), an external renderer."""
    def load(p):
        dst = p + out_suffix
        render(p, dst)
        if not os.path.exists(dst):
            raise ValueError(f"{p}: the renderer wrote no {dst}")
        data = open(dst, "rb").read()
        os.remove(dst)
        return data

    def read(root):
        for rel, p in _walk(root, rx):
            yield rel, (lambda p=p: load(p))
    return read


TRACKER = r"\.(mod|xm|s3m|it|stm|669|mtm|med|ult)$"


def tracker(rx=TRACKER):
    """Tracker modules rendered once through (no repeat) by `openmpt123`
    (Debian package openmpt123), 16 kHz mono 16-bit."""
    def render(src, dst):
        subprocess.run(["openmpt123", "--render", "--samplerate", "16000", "--channels", "1",
                        "--no-float", "--repeat", "0", "-q", "--force", src],
                       check=True, capture_output=True)
    return _rendered(rx, render, ".wav")


def _fluidsynth(root, soundfont):
    """render(src, dst) with fluidsynth and the sound font found below ROOT."""
    fonts = [p for _, p in _walk(root, soundfont)]
    if not fonts:
        raise FileNotFoundError(f"{root}: no sound font matching {soundfont!r}; "
                                "list its package in the EXTRA packages of build_corpus.py")

    def render(src, dst):
        subprocess.run(["fluidsynth", "-ni", "-q", "-F", dst, "-r", "16000", "-R", "0",
                        "-C", "0", fonts[0], src], check=True, capture_output=True)
    return render


SOUNDFONT = r"TimGM6mb\.sf2$"


def midi(rx=r"\.midi?$", soundfont=SOUNDFONT):
    """MIDI files rendered by `fluidsynth` with the sound font found below the
    package root (build_corpus unpacks it there from its own .deb; see EXTRA)."""
    def read(root):
        yield from _rendered(rx, _fluidsynth(root, soundfont), ".wav")(root)
    return read


def wad_lumps(data, path="WAD"):
    """(name, bytes) of every lump of a Doom WAD: "IWAD"/"PWAD", lump count and
    directory offset (32-bit LE), directory of 16-byte entries (offset, size, 8-byte name)."""
    if data[:4] not in (b"IWAD", b"PWAD"):
        raise ValueError(f"{path}: not a Doom WAD (no IWAD/PWAD magic)")
    n, diro = struct.unpack("<ii", data[4:12])
    for i in range(n):
        pos, size, name = struct.unpack("<ii8s", data[diro + 16 * i:diro + 16 * i + 16])
        yield name.rstrip(b"\0").decode("latin-1"), data[pos:pos + size]


def doom_wad(rx=r"\.wad$", soundfont=SOUNDFONT):
    """Music lumps stored as MIDI (`D_*`, rendered by fluidsynth) and sound
    effects in DMX format (`DS*`: 16-bit format 3, rate, sample count, 16 pad
    bytes, unsigned 8-bit samples) of Doom WADs. Paths: `wad path/LUMP.mid|.dmx`."""
    def dmx(b):
        fmt, rate, n = struct.unpack("<HHI", b[:8])
        x = np.frombuffer(b[24:8 + n - 16], dtype=np.uint8).astype(np.float32)
        return (x - 128) / 128, rate

    def midi_lump(root, render, b):
        src = os.path.join(root, "_lump.mid")
        open(src, "wb").write(b)
        render(src, src + ".wav")
        data = open(src + ".wav", "rb").read()
        os.remove(src + ".wav")
        return data

    def read(root):
        render = _fluidsynth(root, soundfont)
        for rel, p in _walk(root, rx):
            for name, b in wad_lumps(open(p, "rb").read(), p):
                if name.startswith("D_") and b[:4] == b"MThd":
                    yield f"{rel}/{name}.mid", (lambda b=b: midi_lump(root, render, b))
                elif name.startswith("DS") and len(b) > 24 and b[:2] == b"\x03\x00":
                    yield f"{rel}/{name}.dmx", (lambda b=b: dmx(b))
    return read


def chain(*readers):
    """All items of several readers, in order."""
    def read(root):
        for r in readers:
            yield from r(root)
    return read


def riff_wavs(rx):
    """WAV files stored whole inside other files (OpenTTD's opensfx.cat): every "RIFF" <32-bit LE size> "WAVE" chunk that fits in the file.
    The path is `file path/NNNN.wav` (NNNN = its order in the file)."""
    def read(root):
        for rel, p in _walk(root, rx):
            data = open(p, "rb").read()
            pos, k = data.find(b"RIFF"), 0
            while pos >= 0:
                size = struct.unpack("<I", data[pos + 4:pos + 8])[0] if pos + 8 <= len(data) else 0
                if data[pos + 8:pos + 12] == b"WAVE" and pos + 8 + size <= len(data):
                    yield f"{rel}/{k:04d}.wav", (lambda d=data, a=pos, b=pos + 8 + size: d[a:b])
                    k += 1
                    pos = data.find(b"RIFF", pos + 8 + size)
                else:
                    pos = data.find(b"RIFF", pos + 4)
    return read


def c4group_entries(data, path="group", prefix=""):
    """(name, bytes) of every file in an OpenClonk group (`.ocg`, `.ocd`, ...),
    recursing into child groups (names `child/.../file`). A packed group file is
    gzip with its magic bytes changed to 1E 8C; inside, a 204-byte header
    scrambled by XOR 237 and swapping bytes 0 and 2 of every 3 ("RedWolf Design
    GrpFolder", 2 versions, entry count: 32-bit LE), then 316-byte entries
    (260-byte name, then 32-bit LE packed, child group, size, reserved, offset
    from the end of the entries)."""
    if data[:2] == b"\x1e\x8c":
        data = gzip.decompress(b"\x1f\x8b" + data[2:])
    h = bytearray(b ^ 237 for b in data[:204])
    h[0:-2:3], h[2::3] = h[2::3], h[0:-2:3]
    if not h.startswith(b"RedWolf Design GrpFolder"):
        raise ValueError(f"{path}: not an OpenClonk group")
    n = struct.unpack("<i", h[36:40])[0]
    base = 204 + 316 * n
    for k in range(n):
        e = data[204 + 316 * k:204 + 316 * (k + 1)]
        name = e[:260].split(b"\0")[0].decode("latin-1")
        child, size, off = struct.unpack("<ii4xi", e[264:280])
        if base + off + size > len(data):
            raise ValueError(f"{path}: entry {prefix}{name} runs past the end")
        blob = data[base + off:base + off + size]
        if child:
            yield from c4group_entries(blob, path, f"{prefix}{name}/")
        else:
            yield prefix + name, blob


def c4group(rx, member_rx=AUDIO):
    """Audio files inside OpenClonk group files whose path matches RX (openclonk-data's
    packed `Sound.ocg`). The path is `group path/child group/.../file`."""
    def read(root):
        for rel, p in _walk(root, rx):
            for name, b in c4group_entries(open(p, "rb").read(), p):
                if re.search(member_rx, name, re.I):
                    yield f"{rel}/{name}", (lambda b=b: b)
    return read
