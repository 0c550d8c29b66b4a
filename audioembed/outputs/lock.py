"""One job at a time on OUT: a --stack job reads and replaces the whole stack; a tree job merges its model record
and sources into OUT/audioembed.json, and two jobs of different models at once would mix their vectors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


class OutLock:
    """One job at a time on OUT: an fcntl.flock on the folder itself (no lock file left among the outputs), released
    when the process ends, however it ends. On systems without fcntl it does nothing."""

    def __init__(self, out: Path):
        self.out, self.fd = out, None

    def acquire(self, on_wait: Callable[[], None] | None = None) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            return
        self.fd = os.open(self.out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)  # Ctrl-C stops the wait
            except BaseException:
                self.release()
                raise
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None
