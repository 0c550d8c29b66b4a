"""Torch modules: the log-mel frontend (frontend.py, mirroring mel.py), the CNN encoder and its clip pooling
(encoder.py), and the export of weights into a model folder (export.py). Importing this imports torch."""

from .encoder import AudioEncoder
from .frontend import LogMel

__all__ = ["AudioEncoder", "LogMel"]
