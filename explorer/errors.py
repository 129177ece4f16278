"""The project's base for bad-input errors, so callers (the CLI) can tell a user's mistake from a bug, and the
rule that a message shown to a visitor names files, never the server folders they live in."""

from __future__ import annotations

import re


class InputError(ValueError):
    """Bad input from the user (a setting, a flag, a file); the message says what is wrong and how to fix it.

    A `ValueError`, so code that already catches `ValueError` keeps working.
    """


# An absolute path (POSIX, `~/…` or a Windows drive) of two or more components, up to a quote, space or delimiter.
_ABSOLUTE_PATH = re.compile(
    r"""(?<![\w.:/])(?:[A-Za-z]:[\\/]|~/|/)(?:[^\s'"`<>|:;,()\[\]\\/]+[\\/])+([^\s'"`<>|:;,()\[\]\\/]*)"""
)


def without_server_paths(message: str) -> str:
    """`message` with every absolute path cut to its last part (`/srv/app/cache/u/a.jpg` -> `a.jpg`): a file's
    name tells the visitor which file is meant; its folder would tell them how the server is laid out."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1) or "<folder>", message)
