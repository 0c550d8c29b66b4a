"""One job at a time on OUT: --stack jobs each read and replace the whole stack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .names import LOCK


class OutLock:
    """One job at a time on OUT: an fcntl.flock on OUT/.audioembed-lock, released when the process ends
    (however it ends). On systems without fcntl it does nothing."""

    def __init__(self, out: Path):
        self.out, self.fd = out, None

    def acquire(self, on_wait: Callable[[], None] | None = None) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            return
        self.fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None
