"""The page `python app.py` serves while it builds the default workspace (loading, embedding n/N, metrics,
projection), so a browser gets an answer within a second instead of "connection refused" for the whole build.

A small Starlette app on the app's own address: `/` is a page that polls `/startup-status` and draws the build's
progress; once the real app has taken over the port (that route is gone) the page reloads into it. Only Starlette
and uvicorn are imported here (Gradio brings both), so it is up before torch or Gradio have loaded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

STATUS_ROUTE = "/startup-status"
MARK_HEADER = "x-explorer-startup"  # the real app's answers lack it: the page then reloads into the app
START_TIMEOUT_S = 10.0

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Metric-learning explorer: starting</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;color:#222}
progress{width:100%;height:1.2rem}#message{margin-top:.6rem;color:#555}</style></head>
<body><h1>Metric-learning explorer</h1><p>Starting: the app builds its default view (data, model, embeddings,
metrics, projection); this page follows the build and opens the app when it is ready.</p>
<progress id="bar" max="1" value="0"></progress><div id="message">starting…</div>
<script>
async function poll() {
  try {
    const answer = await fetch("__ROUTE__", {cache: "no-store"});
    if (answer.headers.get("__MARK__") !== "1") { location.reload(); return; }
    const status = await answer.json();
    document.getElementById("bar").value = status.fraction;
    document.getElementById("message").textContent = status.error ? "Start-up failed: " + status.error
      : Math.round(status.fraction * 100) + " % · " + status.message;
    if (status.error) return;
  } catch (switching) {}  // the app is taking over the port
  setTimeout(poll, 500);
}
poll();
</script></body></html>
""".replace("__ROUTE__", STATUS_ROUTE).replace("__MARK__", MARK_HEADER)


@dataclass
class StartupStatus:
    """How far the build is; written by the build's progress callback, read by the page."""

    fraction: float = 0.0
    message: str = "starting"
    error: str | None = None

    def report(self, fraction: float, message: str) -> None:
        self.fraction, self.message = max(0.0, min(1.0, float(fraction))), message


class StartupPage:
    """The start-up page served in a background thread until `close()` hands the port to the app."""

    def __init__(self, host: str, port: int, status: StartupStatus):
        async def page(request: Request) -> HTMLResponse:
            return HTMLResponse(PAGE, status_code=503, headers={MARK_HEADER: "1", "Retry-After": "1"})

        async def report(request: Request) -> JSONResponse:
            return JSONResponse(vars(status), headers={MARK_HEADER: "1", "Cache-Control": "no-store"})

        app = Starlette(routes=[Route(STATUS_ROUTE, report), Route("/{path:path}", page)])
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="error", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, name="startup-page", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self.close()
            raise OSError(f"cannot serve on {host}:{port}: is another program using that port?")

    def close(self) -> None:
        """Stop serving and free the port (the app binds it next)."""
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)
