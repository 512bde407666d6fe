"""One exception type for every failure a user can cause or fix.

CLIs catch :class:`UserError` and print its message as one line with a non-zero exit code,
so bad input never ends in a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class DataError(UserError):
    """The Fashion-MNIST files are missing, corrupted or cannot be fetched."""


class BundleError(UserError):
    """A model bundle is missing, malformed or does not match its manifest."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """A library exception as one short line (they are often pages long, or empty)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
