"""The project's one progress convention: an optional `(fraction done, message)` callable, and its scaling
onto the stages of a longer job. Core code reports through it; the CLI draws it as tqdm, the app as Gradio's bar."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def report(progress: Progress | None, fraction: float, message: str) -> None:
    """Call `progress` when there is one (every long function takes `progress=None`)."""
    if progress is not None:
        progress(fraction, message)


def scaled(progress: Progress | None, start: float, stop: float) -> Progress | None:
    """A progress callable for one stage that maps its 0..1 onto [start, stop] of the whole job."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (stop - start) * float(fraction), message)
