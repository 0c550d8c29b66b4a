"""A .npy read as numbers, safely: the one reader of the .npy files `audioembed embed` writes and `search` takes."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError


def read_npy(path: Path, ndim: tuple[int, ...] = (1, 2), mmap: bool = False) -> np.ndarray:
    """A .npy of real numbers, checked before anything is allocated: a regular file (a FIFO would hang), a plain
    int or float dtype (no strings, records, dates or pickles), and a header no larger than the file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens without waiting for a writer
    except OSError as exc:
        raise IndexFormatError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IndexFormatError(f"{path}: not a regular file (a pipe, device or socket); remove it or move it away")
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f".npy format version {version} is not supported")
            shape, fortran, dtype = read_header[version](f)
        except (ValueError, EOFError, SyntaxError) as exc:
            hint = "; a .npz archive saved as .npy? save one array with np.save" if f.seek(0) == 0 and f.read(2) == b"PK" else ""
            raise IndexFormatError(f"{path}: not a .npy array ({exc}){hint}") from None
        if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
            raise IndexFormatError(f"{path}: holds {dtype} values, not numbers; embeddings are float32 vectors")
        if len(shape) not in ndim:
            raise IndexFormatError(f"{path}: an array of shape {shape}; expected {' or '.join(f'{n}-d' for n in ndim)}")
        offset, count = f.tell(), math.prod(shape)
        size = os.fstat(fd).st_size
        if count * dtype.itemsize > size - offset:
            raise IndexFormatError(f"{path}: its header claims shape {shape} ({count * dtype.itemsize} bytes), "
                                   f"but the file holds {size - offset}: damaged or cut short; write it again")
        order = "F" if fortran else "C"
        if mmap and count:
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        return np.fromfile(f, dtype=dtype, count=count).reshape(shape, order=order)
