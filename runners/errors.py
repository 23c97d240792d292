"""The command line's one error path: a user's mistake is one line on stderr and a non-zero exit code."""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a missing file, a server not running, options that do not fit together).
    The message says what is wrong and what to do; `code` is the exit code (2: usage, 1: anything else)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def usage(message: str) -> UserError:
    """A usage mistake (exit code 2, like argparse's own)."""
    return UserError(message, 2)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message as one short line (Java and librdkafka messages run to pages)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
