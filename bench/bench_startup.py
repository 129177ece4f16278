"""`python app.py` from a fresh process to a complete page in Chromium, cold (empty embeddings cache) and warm.

For each start the clock begins when the process is launched; reported: the first HTTP answer (the start-up page),
the moment the app itself answers (the start-up page's mark is gone), and the complete page in Chromium: the
page opened as soon as anything answers, followed through the start-up page's reload, until the metrics table
shows its OVERALL row (Metrics tab) and the query grid's picture has loaded (Queries tab): what a user waits for. UMAP runs in the background
afterwards and is not part of it (see bench_umap.py). Needs Debian's /usr/bin/chromium.

    python bench/bench_startup.py [--data shapes] [--starts cold warm]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.ui.starting import MARK_HEADER  # noqa: E402  (Starlette only: no torch, no Gradio)

CHROMIUM = "/usr/bin/chromium"
LIMIT_S = 600
APP_POLL_S = 0.5  # the start-up page's own rate: faster polling adds load to the process being timed
PAGE_STEP_MS = 60_000  # each step of the page once the app answers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answer_kind(url: str) -> str | None:
    """ "start-up" (the progress page), "app", or None while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return "start-up" if answer.headers.get(MARK_HEADER) == "1" else "app"
    except urllib.error.HTTPError as error:  # the start-up page answers 503 + Retry-After
        return "start-up" if error.headers.get(MARK_HEADER) == "1" else "app"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def one_start(data: str, cache: Path, browser) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "EXPLORER_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py", "--data", data, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    times: dict[str, float] = {}
    try:
        while "first answer" not in times and time.perf_counter() - started < LIMIT_S:
            if answer_kind(url) is not None:
                times["first answer"] = time.perf_counter() - started
            else:
                time.sleep(0.05)
        page = browser.new_page()
        page.goto(url)
        while "app answers" not in times and time.perf_counter() - started < LIMIT_S:
            if answer_kind(url) == "app":
                times["app answers"] = time.perf_counter() - started
            else:
                time.sleep(APP_POLL_S)
        page.get_by_role("tab", name="Metrics", exact=True).click(timeout=PAGE_STEP_MS)  # the app's, not start-up's
        page.locator("#metrics-table").get_by_text("OVERALL").filter(visible=True).first.wait_for(timeout=PAGE_STEP_MS)
        page.get_by_role("tab", name="Queries", exact=True).click(timeout=PAGE_STEP_MS)
        page.wait_for_function(
            "() => document.querySelector('#query-grid img')?.naturalWidth > 0", timeout=PAGE_STEP_MS
        )
        times["complete page"] = time.perf_counter() - started
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--starts", nargs="+", default=["cold", "warm"], choices=("cold", "warm"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        cache = Path(folder) / "cache"
        for number, start in enumerate(args.starts):
            if start == "cold":  # an empty cache; a warm start reuses what the start before it cached
                cache = Path(folder) / f"cache-{number}"
            times = one_start(args.data, cache, browser)
            figures = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items())
            print(f"{start} start of --data {args.data}: {figures} (load {os.getloadavg()[0]:.1f})", flush=True)
        browser.close()


if __name__ == "__main__":
    main()
