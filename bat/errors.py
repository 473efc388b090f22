"""Failure categories for bad input.

A deterministic failure (the file is corrupt, empty, in an unwanted meter...) is recorded in the store's
failures table under its category and never retried; only transient I/O errors are worth a retry.
"""

from __future__ import annotations


class BatError(Exception):
    """Base of every error bat raises about its input; ``category`` names the failures-table bucket."""

    category = "error"

    def __init__(self, source: str, message: str):
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class ReadError(BatError):
    """The file could not be read (missing, permission, I/O)."""

    category = "read"


class ParseError(BatError):
    """The bytes are not a valid MIDI (or audio) file."""

    category = "parse"


class EmptyError(BatError):
    """The file parses but holds no notes, or no beats to featurize."""

    category = "empty"


class MeterError(BatError):
    """The song's meter is excluded by the run's meter filter."""

    category = "meter"


class TimeoutError(BatError):  # noqa: A001 - the category is called timeout on purpose
    """Featurizing the file took longer than the per-file limit."""

    category = "timeout"


class TooLargeError(BatError):
    """The file is beyond the size, tick or event limits (often a corrupt file in disguise)."""

    category = "too_large"


CATEGORIES = tuple(c.category for c in (ReadError, ParseError, EmptyError, MeterError, TimeoutError, TooLargeError))
