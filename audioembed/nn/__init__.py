"""Torch modules: the log-mel frontend and the CNN encoder. Importing this imports torch."""

from .encoder import AudioEncoder
from .frontend import LogMel

__all__ = ["AudioEncoder", "LogMel"]
