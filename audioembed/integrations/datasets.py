"""Hugging Face datasets: `ds.map(embedder.hf_map_fn(), batched=True, num_proc=N)` adds an embedding column.

The Audio column may be decoded (`{"array", "sampling_rate"}`, as datasets' decoders give it) or not
(`Audio(decode=False)`: `{"bytes", "path"}`, streamed through the same decoder and limits as a file);
either way audioembed's resampler brings it to the model's rate, unless `Audio(sampling_rate=...)` already
did. Errors name the row: its number in the batch, or in the dataset with `ds.map(..., with_indices=True)`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..errors import AudioError


class EmbedColumn:
    """A batched map function that pickles without its model: each of `num_proc` processes loads it once."""

    def __init__(self, embedder: Any, audio_column: str, column: str):
        """embedder: an Embedder; a process that unpickles this map function builds its own from its arguments."""
        self.embedder_class, self.embedder_args = type(embedder), embedder._args  # (model, keyword arguments)
        self.audio_column, self.column = audio_column, column
        self._embedder = embedder

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_embedder": None}

    def __call__(self, batch: dict[str, list], indices: list[int] | None = None) -> dict[str, np.ndarray]:
        """indices: the rows' numbers in the dataset (`ds.map(..., with_indices=True)`), used to name a bad row."""
        if self._embedder is None:  # the class pickles by name: no import of embedder.py here, which imports this
            model, kwargs = self.embedder_args
            self._embedder = self.embedder_class(model, **kwargs)
        values = batch[self.audio_column]
        rows = [f"row {i}" for i in indices] if indices is not None else [f"batch row {i}" for i in range(len(values))]
        items, rates = zip(*(_audio_input(v, row, self.audio_column) for v, row in zip(values, rows))) if values else ((), ())
        vectors = np.zeros((len(items), self._embedder.dim), np.float32)
        for result in self._embedder.iter_results(list(items), sr=list(rates)):
            if result.error is not None:  # the first bad row stops the map, as datasets expects of an error
                error = result.error
                raise type(error)(f"{rows[result.index]}: {error}") from None
            vectors[result.index] = result.embedding
        return {self.column: vectors}


def _audio_input(value: Any, row: str, column: str) -> tuple[Any, int | None]:
    """One Audio value -> (array, rate), (path, None) or (bytes as a named file object, None), which Embedder takes.

    Bytes go through the same streaming decoder and limits as a path (channels, block size, samples)."""
    if value is None:
        raise AudioError(f"{row}: no audio in column {column!r} (None); drop or fill such rows first, e.g. "
                         f"ds.filter(lambda r: r[{column!r}] is not None)")
    if isinstance(value, dict) and "array" not in value:  # Audio(decode=False)
        path, data = value.get("path"), value.get("bytes")
        if data is None:
            if path is None:
                raise AudioError(f"{row}: its {column!r} value has neither bytes nor a path")
            return path, None
        buf = io.BytesIO(data)
        buf.name = path or "<audio bytes>"  # errors name the file the bytes came from
        return buf, None
    return value["array"], value["sampling_rate"]  # a decoded dict, or datasets' AudioDecoder
