"""The app in a real browser (Debian's Chromium through Playwright): the main views work as a user drives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_workspace import build_tiny_workspace, serve_app

from explorer import const as C

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed"),
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("browser"))
    with serve_app(workspace) as url:
        yield url, workspace


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(served, browser):
    url, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name="Metric-learning explorer").wait_for(timeout=TIMEOUT_MS)
    yield page
    page.close()


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _cell(page, elem_id: str, row: int, column: int):
    """A shown cell of a Gradio Dataframe (its hidden sizing table is not matched)."""
    return page.locator(f"#{elem_id} [data-testid=cell-{row}-{column}]")


def _image_source(page, elem_id: str) -> str | None:
    image = page.locator(f"#{elem_id} img")
    return image.get_attribute("src") if image.count() else None


def _wait_new_image(page, elem_id: str, old: str | None) -> None:
    page.wait_for_function(
        """([id, old]) => { const img = document.querySelector(`#${id} img`);
                            return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old; }""",
        arg=[elem_id, old],
        timeout=TIMEOUT_MS,
    )


def test_page_loads_with_metrics_and_pictures_ready(page, served):
    _, workspace = served
    assert workspace.dataset.name in page.locator("#header").inner_text()
    _open_tab(page, "Metrics")
    page.locator("#metrics-table").get_by_text("OVERALL").filter(visible=True).first.wait_for(timeout=TIMEOUT_MS)
    _open_tab(page, "Queries")
    page.wait_for_function("() => document.querySelector('#query-grid img')?.naturalWidth > 0", timeout=TIMEOUT_MS)


def test_choosing_query_ids_and_n_instances_shows_their_grid(page):
    _open_tab(page, "Queries")
    old = _image_source(page, "query-grid")
    old_height = page.evaluate("() => document.querySelector('#query-grid img').naturalHeight")
    page.locator("#query-ids textarea, #query-ids input").first.fill("1, 4, 5, 9")
    page.locator("#query-instances input[type=number]").fill("3")
    page.locator("#query-show").click()
    _wait_new_image(page, "query-grid", old)
    new_height = page.evaluate("() => document.querySelector('#query-grid img').naturalHeight")
    assert new_height > old_height  # four rows instead of three


def test_bad_query_ids_show_the_message_and_the_page_keeps_working(page, served):
    _, workspace = served
    _open_tab(page, "Queries")
    page.locator("#query-ids textarea, #query-ids input").first.fill("999")
    page.locator("#query-show").click()
    page.get_by_text(f"valid ids are 0..{workspace.n_queries - 1}").first.wait_for(timeout=TIMEOUT_MS)


def test_worst_queries_render_and_a_row_click_opens_that_query(page):
    _open_tab(page, "Worst queries")
    old = _image_source(page, "worst-grid")
    page.locator("#worst-count input[type=number]").fill("2")
    page.locator("#worst-show").click()
    _wait_new_image(page, "worst-grid", old)
    first_id = _cell(page, "worst-table", 0, 0).inner_text().strip()
    _cell(page, "worst-table", 0, 1).click()
    page.wait_for_function(
        "expected => { const box = document.querySelector('#query-ids textarea, #query-ids input');"
        " return box && box.value === expected && box.offsetParent !== null; }",
        arg=first_id,
        timeout=TIMEOUT_MS,
    )


def test_clicking_a_projection_point_opens_its_retrieval_row(page, served):
    _, workspace = served
    _open_tab(page, "Embeddings")
    page.wait_for_selector("#projection-plot .plotly-click-plot .main-svg", timeout=TIMEOUT_MS)
    coords = workspace.projection_coords("pca")
    item = int(workspace.query_positions[0])
    position = page.evaluate(
        """([x, y]) => {
            const plot = document.querySelector('#projection-plot .plotly-click-plot');
            const layout = plot._fullLayout;
            const box = plot.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(x), box.top + layout._size.t + layout.yaxis.d2p(y)];
        }""",
        [float(coords[item, 0]), float(coords[item, 1])],
    )
    page.mouse.move(*position)
    page.mouse.click(*position)
    _wait_new_image(page, "clicked-row", None)


def test_uploading_an_image_searches_the_gallery(page, served):
    _, workspace = served
    _open_tab(page, "Search")
    row = int(workspace.gallery_positions[3])
    page.locator("#search-image input[type=file]").set_input_files(workspace.paths[row])
    page.wait_for_selector("#search-image img", timeout=TIMEOUT_MS)
    page.locator("#search-run").click()
    _wait_new_image(page, "search-result", None)
    _cell(page, "search-table", 0, 1).wait_for(timeout=TIMEOUT_MS)
    assert _cell(page, "search-table", 0, 1).inner_text().strip() == str(row)  # nearest: the uploaded image itself
    assert _cell(page, "search-table", 0, 2).inner_text().strip() == str(workspace.df[C.LABELS_COLUMN].iloc[row])
