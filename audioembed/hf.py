"""Hugging Face datasets: `ds.map(embedder.hf_map_fn(), batched=True, num_proc=N)` adds an embedding column.

The Audio column may be decoded (`{"array", "sampling_rate"}`, as datasets' decoders give it) or not
(`Audio(decode=False)`: `{"bytes", "path"}`, decoded here with libsndfile); either way audioembed's
resampler brings it to the model's rate, unless `Audio(sampling_rate=...)` already did.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .errors import AudioDecodeError


class EmbedColumn:
    """A batched map function that pickles without its model: each of `num_proc` processes loads it once."""

    def __init__(self, embedder_args: tuple[Any, dict], audio_column: str, column: str, embedder: Any = None):
        self.embedder_args = embedder_args  # (model, keyword arguments) of Embedder(...)
        self.audio_column, self.column = audio_column, column
        self._embedder = embedder

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_embedder": None}

    def __call__(self, batch: dict[str, list]) -> dict[str, np.ndarray]:
        if self._embedder is None:
            from .embedder import Embedder

            model, kwargs = self.embedder_args
            self._embedder = Embedder(model, **kwargs)
        items, rates = zip(*map(_audio_input, batch[self.audio_column])) if batch[self.audio_column] else ((), ())
        return {self.column: self._embedder.embed(list(items), sr=list(rates))}


def _audio_input(value: Any) -> tuple[Any, int | None]:
    """One Audio value -> (array, rate) or (path, None), which Embedder.embed takes."""
    if isinstance(value, dict) and "array" not in value:  # Audio(decode=False)
        path, data = value.get("path"), value.get("bytes")
        if data is None:
            return path, None
        import soundfile as sf

        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioDecodeError(f"{path or '<audio bytes>'}: not a readable audio file ({exc})") from exc
        mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]  # as for a file
        return mono, rate
    return value["array"], value["sampling_rate"]  # a decoded dict, or datasets' AudioDecoder
