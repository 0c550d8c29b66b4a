"""Shared helpers for building audio data from Debian packages.

Download .deb files with `apt-get download`, unpack selected members with
`dpkg-deb --fsys-tarfile | tar`, read the licence from the package's
copyright file, and decode/convert audio to 16 kHz mono float32.
Only numpy, soundfile, soxr and Debian command-line tools are used.
"""
import glob
import io
import os
import re
import subprocess
import tempfile

import numpy as np
import soundfile as sf
import soxr

SR = 16000

# Packages reserved for held-out evaluation: never download or read them.
RESERVED_PREFIXES = (
    "asterisk-core-sounds-", "asterisk-prompt-", "asterisk-moh-",
    "hydrogen-drumkits", "musescore-general-soundfont",
)
# Packages used by the dev sets; the pretraining corpus must not use them.
DEVSET_PACKAGES = ("fluid-soundfont-gm", "ktuberling-data")
# 0ad-data sound effects held out for the zeroad_sfx dev set (paths inside
# public.zip, label = class). The corpus skips every file matched here.
ZEROAD_HELDOUT = [
    (r"^audio/attack/impact/", "impact"),
    (r"^audio/attack/weapon/", "weapon"),
    (r"^audio/actor/human/death/", "human_death"),
    (r"^audio/actor/fauna/", "animal"),
    (r"^audio/actor/(singlesteps|human/movement)/", "footsteps"),
    (r"^audio/resource/gathering/", "gathering"),
    (r"^audio/resource/mining/", "mining"),
    (r"^audio/resource/(construction|lumbering)/", "construction_lumbering"),
]


def check_allowed(pkg):
    if pkg.startswith(RESERVED_PREFIXES):
        raise SystemExit(f"refusing reserved package {pkg!r} (held out for evaluation)")


def fetch_deb(pkg, debdir):
    """Return the path of PKG's .deb in DEBDIR, downloading it if needed."""
    check_allowed(pkg)
    os.makedirs(debdir, exist_ok=True)
    found = glob.glob(os.path.join(debdir, f"{pkg}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", pkg], cwd=debdir, check=True)
        found = glob.glob(os.path.join(debdir, f"{pkg}_*.deb"))
    return sorted(found)[-1]


def extract(pkg, deb, dest, patterns):
    """Unpack members of DEB matching shell PATTERNS (plus the copyright file)
    into DEST. Skipped if DEST/.done exists."""
    check_allowed(pkg)
    done = os.path.join(dest, ".done")
    if os.path.exists(done):
        return dest
    os.makedirs(dest, exist_ok=True)
    pats = list(patterns) + [f"./usr/share/doc/{pkg}/copyright"]
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    # tar exits non-zero if a pattern matches nothing; that is fine here.
    subprocess.run(["tar", "-x", "-C", dest, "--wildcards", "--no-anchored", *pats],
                   stdin=tar.stdout, stderr=subprocess.DEVNULL)
    tar.wait()
    open(done, "w").close()
    return dest


def copyright_path(root, pkg):
    return os.path.join(root, "usr/share/doc", pkg, "copyright")


AUDIO_HINT = re.compile(r"sound|music|audio|voice|speech|sampl|snd|\.(ogg|opus|wav|flac)", re.I)


def licence(path):
    """Short licence string from a Debian copyright file. DEP-5: the licence
    of `Files: *` plus those of stanzas whose Files field looks like audio
    (sound/music/voice/.ogg ...). Free-form files: the common-licenses files
    or licence name the text mentions first."""
    if not os.path.exists(path):
        return "unknown (no copyright file)"
    text = open(path, encoding="utf-8", errors="replace").read()
    names = []
    for st in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", st, re.M)
        lic = re.search(r"^License:[ \t]*(\S.*)$", st, re.M)
        if files and lic and (files.group(1).split() == ["*"] or AUDIO_HINT.search(files.group(1))):
            if lic.group(1).strip() not in names:
                names.append(lic.group(1).strip())
    if not names:  # free-form copyright file
        pats = [r"\brelease[sd]? [^.]*?\bunder the ([A-Z][\w.-]*) licen[cs]e", r"common-licenses/([\w.+-]+?)(?=[\s,.;)'\"]*(?:\s|$))", r"\b(CC[- ]BY(?:[- ]SA)?[- ]?[\d.]*)",
                r"(Creative Commons[\w -]*?)(?=[,.;\n]|\s+licen)", r"\b(public domain)"]
        for pat in pats:
            for m in re.finditer(pat, text, re.I):
                if m.group(1).strip() not in names:
                    names.append(m.group(1).strip())
        names = [n + " (free-form copyright file)" for n in names[:1]]
    return "; ".join(names) if names else "see copyright file"


def _ffmpeg_decode(data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        out = subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-i", f.name, "-ac", "1", "-ar", str(SR),
             "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.float32).copy()


def load_16k_mono(src):
    """Decode SRC (a path, bytes, or already decoded `(samples, rate)`) to mono
    float32 at 16 kHz. soundfile first, ffmpeg as fallback (if installed)."""
    if isinstance(src, tuple):
        x, sr = np.asarray(src[0], dtype=np.float32), src[1]
        x = x.reshape(len(x), -1).mean(axis=1)
    else:
        data = src if isinstance(src, bytes) else open(src, "rb").read()
        try:
            x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception:
            return _ffmpeg_decode(data)
        x = x.mean(axis=1)
    if sr != SR:
        x = soxr.resample(x, sr, SR, quality="HQ").astype(np.float32)
    return x


def is_silent(x, thresh_db=-50.0):
    return x.size == 0 or 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-12) < thresh_db


def safe_name(s):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_")
