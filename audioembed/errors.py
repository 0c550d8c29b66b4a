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


class TrainingError(AudioEmbedError, ValueError):
    """Training cannot start or go on as asked: bad settings, or a checkpoint that does not fit."""


class ModelSourceWarning(UserWarning):
    """The model came from a fallback (the cache, the bundled weights) because the hub could not be reached."""


# audioembed is installed from a clone (it is not on PyPI): hints name the extra and its packages.
EXTRA_PACKAGES = {
    "torch": ["torch", "safetensors"],
    "train": ["torch", "safetensors", "onnx"],
    "eval": ["scikit-learn", "threadpoolctl"],
    "av": ["av"],
    "openvino": ["openvino"],
    "search": ["faiss-cpu"],
    "ray": ["ray", "pandas", "pyarrow", "fsspec"],
    "datasets": ["datasets"],
    "docs": ["mkdocs", "mkdocs-material", "mkdocstrings", "matplotlib", "scikit-learn"],
}
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def install_hint(extra: str) -> str:
    """How to get an optional extra: from the clone, or its packages by name; torch as its CPU-only build."""
    packages = EXTRA_PACKAGES[extra]
    hint = f'pip install ".[{extra}]" in the audioembed folder (or: pip install {" ".join(packages)})'
    if "torch" in packages:
        hint += f"; for a CPU-only torch (no CUDA download) run {CPU_TORCH} first"
    return hint


class IndexFormatError(AudioEmbedError):
    """A search index (what `audioembed embed` wrote) is missing, empty or unreadable."""


def printable(text: str) -> str:
    """Text safe for a terminal and a log: control characters escaped (`\\x1b`, `\\n`), and bytes of a file
    name that are not UTF-8 (surrogates in Python's str) shown as `\\xff`."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name produced
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
