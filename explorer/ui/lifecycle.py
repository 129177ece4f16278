"""A browser session's start and end: its `WorkspaceSession` is registered when the page loads and closed (its
files removed, its job stopped) as soon as the page is closed or reloaded.

Gradio keeps a closed session's state for an hour before its `delete_callback` runs (so a user can come back);
files a visitor left behind should not wait that long, so `demo.unload` closes the session at once, found by the
session hash the page load registered it under.
"""

from __future__ import annotations

import threading

import gradio as gr

from explorer.workspace import WorkspaceSession

_open_sessions: dict[str, WorkspaceSession] = {}
_guard = threading.Lock()


def register_session(session: WorkspaceSession, request: gr.Request) -> WorkspaceSession:
    """On page load: remember the session under its hash (returned, so Gradio also tracks it for expiry)."""
    if request.session_hash:
        with _guard:
            _open_sessions[request.session_hash] = session
    return session


def close_session(request: gr.Request) -> None:
    """On page close or reload: stop the session's job and remove its files."""
    with _guard:
        session = _open_sessions.pop(request.session_hash or "", None)
    if session is not None:
        session.close()


def wire_session_lifecycle(demo: gr.Blocks, session: gr.State) -> None:
    demo.load(register_session, session, session, api_visibility="private", queue=False)
    demo.unload(close_session)
