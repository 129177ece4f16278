"""What every event handler of the app shares: errors shown as messages, progress bars, bound output components.

Backend `InputError`s become `gr.Error` messages with their text; anything else is logged and reported in one
line, so the app keeps serving whatever a handler hit.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr
from PIL import Image

from explorer.errors import InputError, without_server_paths
from explorer.workspace import WorkspaceSession

log = logging.getLogger(__name__)

TRACKED = gr.Progress(track_tqdm=True)  # default of handlers' progress parameter; Gradio makes one per call


def as_ui_error(error: Exception, where: str) -> gr.Error:
    """Backend input errors keep their message; anything unexpected is logged and shown in one line."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, InputError):
        return gr.Error(without_server_paths(str(error)))
    log.error("unexpected error in %s", where, exc_info=error)
    return gr.Error(without_server_paths(f"Unexpected error ({type(error).__name__}): {error}"))


def user_errors(fn: Callable) -> Callable:
    """Wrap a handler (plain or generator) so the user sees a message, never a traceback, and the app serves on."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:  # the app must keep serving whatever happened
                raise as_ui_error(error, fn.__name__) from error

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:  # the app must keep serving whatever happened
            raise as_ui_error(error, fn.__name__) from error

    return wrapper


def picture_file(session: WorkspaceSession, image: Image.Image | None) -> str | None:
    """`image` saved as this response's own file in the session's folder: concurrent responses with identical
    pictures never share (or rewrite) one file, and the files go with the session."""
    if image is None:
        return None
    path = session.files.new_picture()
    image.save(path)
    return str(path)


def reporter(progress: gr.Progress) -> Callable[[float, str], None]:
    """The backend's progress callback `(fraction, message)` drawn as Gradio's progress bar."""
    return lambda fraction, message: progress(fraction, desc=message)


def with_outputs(handler: Callable, **components: Any) -> Callable:
    """`handler` with its keyword-only component parameters bound, for handlers that return `{component: value}`.

    A `functools.partial` (not a wrapper) so that Gradio still sees the handler's own parameters and its progress
    default; it keeps the handler's name, Gradio's default api_name.
    """
    bound = functools.partial(handler, **components)
    bound.__name__ = handler.__name__
    return bound
