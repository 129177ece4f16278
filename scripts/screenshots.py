"""Regenerate the README screenshots (docs/*.png) of the app's main views.

    python scripts/screenshots.py [--data ../shared/data/birds50] [--url http://127.0.0.1:7860]

Without --url the app is built and served here (`python app.py [--data ...]`: the default data and model unless
--data names another source). Needs Debian's Chromium at /usr/bin/chromium (Playwright drives it; no
`playwright install`). Not run by the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
DOCS = ROOT / "docs"
TIMEOUT_MS = 300_000
# (file name, tab, how to get the view ready on that tab)
VIEWS = (
    ("data.png", "Data", None),
    ("metrics.png", "Metrics", None),
    ("queries.png", "Queries", "#query-show"),
    ("worst_queries.png", "Worst queries", "#worst-show"),
    ("embeddings.png", "Embeddings", None),
    ("search.png", "Search", "#search-run"),
    ("selection.png", "Embeddings", None),
    ("confusions.png", "Confusions", "#confusions-show"),
    ("label_errors.png", "Label errors", "#suspects-show"),
)


def _serve(data: str | None) -> str:
    from app import build_app, parse_args

    demo, options = build_app(parse_args(["--data", data] if data else []))
    demo.launch(prevent_thread_lock=True, quiet=True, **options)
    return demo.local_url


def _shoot(url: str, search_image: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("heading", name="Metric-learning explorer").wait_for(timeout=TIMEOUT_MS)
        for name, tab, button in VIEWS:
            page.get_by_role("tab", name=tab, exact=True).click()
            if name == "search.png":
                page.locator("#search-image input[type=file]").set_input_files(search_image)
                page.wait_for_selector("#search-image img", timeout=TIMEOUT_MS)
            if button:
                page.locator(button).click()
            if name == "embeddings.png":
                page.wait_for_selector("#projection-plot .main-svg", timeout=TIMEOUT_MS)
                _click_first_query_point(page)
            if name == "selection.png":
                _select_a_box(page)
            if name == "confusions.png":
                page.locator("#confusions-table [data-testid=cell-0-0]").click(timeout=TIMEOUT_MS)
                page.wait_for_selector("#confusion-queries img", timeout=TIMEOUT_MS)
            if name == "label_errors.png":
                page.wait_for_selector("#suspects-rows-image img", timeout=TIMEOUT_MS)
            page.wait_for_timeout(3000)  # Gradio keeps a live connection: there is no "network idle" to wait for
            DOCS.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS / name), full_page=True)
            written.append(DOCS / name)
        browser.close()
    return written


def _a_gallery_image(data: str | None) -> str:
    from explorer.data.loading import load_dataset

    dataset = load_dataset(data or "shapes")
    row = dataset.validation_df.iloc[0]
    return str(Path(dataset.root) / row["path"])


def _click_first_query_point(page) -> None:
    """Click the first point of the first trace, so the screenshot shows a clicked item's retrieval row."""
    position = page.evaluate(
        """() => {
            const plot = document.querySelector('#projection-plot .plotly-click-plot');
            const layout = plot._fullLayout, trace = plot._fullData[0], box = plot.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(trace.x[0]),
                    box.top + layout._size.t + layout.yaxis.d2p(trace.y[0])];
        }"""
    )
    page.mouse.move(*position)
    page.mouse.click(*position)
    page.wait_for_function("() => document.querySelector('#clicked-row img')?.naturalWidth > 0", timeout=TIMEOUT_MS)


def _select_a_box(page) -> None:
    """Box-select the middle of the plot (the middle half of each axis), so the screenshot shows a selection."""
    page.evaluate(
        "() => Plotly.relayout(document.querySelector('#projection-plot .plotly-click-plot'), {dragmode: 'select'})"
    )
    box = page.locator("#projection-plot .plotly-click-plot .nsewdrag").first.bounding_box()
    start = (box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    end = (box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.75)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=10)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#selection-grid img')?.naturalWidth > 0", timeout=TIMEOUT_MS)
    page.locator("#selection-grid").scroll_into_view_if_needed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an app already running (default: build and serve one here)")
    parser.add_argument("--data", help="the data source to serve (default: the app's default data)")
    args = parser.parse_args()
    for path in _shoot(args.url or _serve(args.data), _a_gallery_image(args.data)):
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
