"""Torch modules: the log-mel frontend, the CNN encoder, loading its weights, the device. Importing this imports torch."""

from .encoder import AudioEncoder
from .frontend import LogMel

__all__ = ["AudioEncoder", "LogMel"]
