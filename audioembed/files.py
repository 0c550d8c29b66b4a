"""Files on disk, one rule each: which files are audio, how a file is written (temp file, then rename), and
where audioembed keeps its caches."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from .audio import AUDIO_EXTENSIONS

TEMP_SUFFIX = ".audioembed-tmp"


def cache_folder(name: str) -> Path:
    """~/.cache/audioembed/NAME, or under $XDG_CACHE_HOME when it is set: the eval and training caches."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "audioembed" / name


def atomic_save(path: Path, array: np.ndarray, durable: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    atomic_write_bytes(path, buf.getvalue(), durable)


def temp_path(path: Path) -> Path:
    """A short sibling name (a long output name plus a suffix could pass NAME_MAX) that records our pid."""
    digest = hashlib.sha1(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return path.with_name(f".{digest}.{os.getpid()}{TEMP_SUFFIX}")


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    with atomic_file(path, durable) as f:
        f.write(data)


def move_into_place(tmp: Path, path: Path, durable: bool = True) -> None:
    """Rename a finished temp file (written elsewhere, e.g. streamed) over `path`, fsynced first when durable."""
    try:
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path: Path, durable: bool = True) -> Iterator[io.BufferedWriter]:
    """A temp file that replaces `path` once written (and fsynced, when durable), and is removed if writing fails."""
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_stale_temp_files(out: Path) -> int:
    """Temp files left by killed runs (SIGKILL leaves no chance to clean up); a live job's are kept."""
    removed = 0
    for root, _dirs, files in os.walk(out):
        for name in files:
            if name.endswith(TEMP_SUFFIX) and not _writer_alive(os.path.join(root, name)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
                    removed += 1
    return removed


def _writer_alive(temp_file: str) -> bool:
    """Whether the process whose pid is in the temp file's name may still be writing it."""
    try:
        pid = int(os.path.basename(temp_file)[: -len(TEMP_SUFFIX)].rsplit(".", 1)[-1])
    except ValueError:
        return False
    if os.name == "nt":  # os.kill would terminate the process there: go by age instead
        with contextlib.suppress(OSError):
            return time.time() - os.path.getmtime(temp_file) < 24 * 3600
        return False
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:
        return True  # it exists, owned by another user
    except (ProcessLookupError, OverflowError):
        return False
    return True


def is_audio(path: Path) -> bool:
    """Audio by its extension: what every command searches folders for."""
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def find_audio(root: Path, errors: list[str] | None = None, ignored: list[Path] | None = None) -> list[Path]:
    """Audio files under root (or root itself, a file), sorted; symlinked folders are not followed (no loops,
    no escapes), hidden folders (.git, .venv, .cache) are not entered unless root is one.

    errors: gets a line per folder that cannot be read, so that its files are not skipped silently.
    ignored: gets the other files (not hidden ones), so that the user can see what was left out.
    """
    if Path(root).is_file():
        return [Path(root)]
    found = []

    def unreadable(exc: OSError) -> None:
        if errors is not None:
            errors.append(f"{exc.filename}: cannot read this folder ({exc.strerror or exc}); its files were skipped")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if is_audio(Path(name)):
                found.append(Path(dirpath) / name)
            elif ignored is not None and not name.startswith("."):
                ignored.append(Path(dirpath) / name)
    return found
