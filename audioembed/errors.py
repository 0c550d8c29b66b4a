"""One small exception hierarchy: every error says what happened, to which input, and what to do."""


class AudioEmbedError(Exception):
    """Base class of every error audioembed raises on purpose."""


class AudioError(AudioEmbedError, ValueError):
    """An input could not be turned into a valid waveform."""


class AudioDecodeError(AudioError):
    """A file exists but is not readable audio."""


class ModelError(AudioEmbedError):
    """A model could not be found, downloaded, verified or loaded."""


class ModelNotFoundError(ModelError):
    """No weights for the requested model are available anywhere we looked."""


class IntegrityError(ModelError):
    """A weight file does not match the sha256 recorded for it."""


class BackendError(AudioEmbedError):
    """The requested backend or device is not available."""
