"""audioembed: fixed-size audio embeddings from a self-supervised CNN.

`Embedder().embed("clip.wav")` gives a vector. This module holds the public API (the Embedder, ModelConfig, the
errors, cosine search); nothing heavy (torch, onnxruntime) is imported here. Beside it: backends/ (ONNX Runtime,
torch), nn/ (the torch modules), integrations/ (HEAR, datasets, Ray), train/ (`pretrain`), eval/ (`evaluate`).
"""

from .config import ModelConfig
from .embedder import Embedder, FrameEmbeddings, Result
from .errors import (
    AudioDecodeError,
    AudioEmbedError,
    AudioError,
    BackendError,
    IndexFormatError,
    IntegrityError,
    ModelError,
    ModelNotFoundError,
    TrainingError,
)
from .search import cosine_similarity, top_k

__version__ = "0.4.0"

__all__ = [
    "AudioDecodeError",
    "AudioEmbedError",
    "AudioError",
    "BackendError",
    "Embedder",
    "FrameEmbeddings",
    "IndexFormatError",
    "IntegrityError",
    "ModelConfig",
    "ModelError",
    "ModelNotFoundError",
    "Result",
    "TrainingError",
    "__version__",
    "cosine_similarity",
    "top_k",
]
