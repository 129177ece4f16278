"""The project's base for bad-input errors, so callers (the CLI) can tell a user's mistake from a bug."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user (a setting, a flag, a file); the message says what is wrong and how to fix it.

    A `ValueError`, so code that already catches `ValueError` keeps working.
    """
