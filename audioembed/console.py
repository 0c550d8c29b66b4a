"""What the command line tells the user on stderr: plain one-line notes, never a Python warning with its source line."""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import typer


def err(msg: str) -> None:
    typer.echo(msg, err=True)


@contextlib.contextmanager
def model_notes(quiet: bool = False) -> Iterator[None]:
    """Say where a model came from when it was a fallback, as one `note:` line; library users get the warning."""
    from .errors import ModelSourceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelSourceWarning)
        yield
    for w in caught:
        if issubclass(w.category, ModelSourceWarning):
            if not quiet:
                err(f"note: {w.message}")
        else:  # anything else is shown as it would have been
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
