"""Exploring the data in a real browser (Debian's Chromium): hover thumbnails, a box selection's grid, the
neighbours of a train item, tiles that open their item's row, and label filters."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_workspace import build_tiny_workspace, serve_app

from explorer import const as C

pytestmark = pytest.mark.browser
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("explore"))
    with serve_app(workspace) as url:
        yield url, workspace


@pytest.fixture
def page(served, browser):
    url, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name="Metric-learning explorer").wait_for(timeout=TIMEOUT_MS)
    yield page
    page.close()


def _open_embeddings(page) -> None:
    page.get_by_role("tab", name="Embeddings", exact=True).click()
    page.wait_for_selector("#projection-plot .plotly-click-plot .main-svg", timeout=TIMEOUT_MS)


def _screen_point(page, x: float, y: float) -> list[float]:
    """Where plotly draws data coordinates (x, y) on the screen."""
    return page.evaluate(
        """([x, y]) => {
            const plot = document.querySelector('#projection-plot .plotly-click-plot');
            const layout = plot._fullLayout;
            const box = plot.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(x), box.top + layout._size.t + layout.yaxis.d2p(y)];
        }""",
        [float(x), float(y)],
    )


def _wait_image(page, elem_id: str, old: str | None = None) -> str:
    page.wait_for_function(
        """([id, old]) => { const img = document.querySelector(`#${id} img`);
                            return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old; }""",
        arg=[elem_id, old],
        timeout=TIMEOUT_MS,
    )
    return page.locator(f"#{elem_id} img").get_attribute("src")


def _click_tile(page, elem_id: str, column: int) -> None:
    """Click the middle of tile `column` of the first row of a grid picture (its geometry: retrieval_render)."""
    from explorer.viz.retrieval_render import FONT_SIZE, GAP, TILE_SIZE, TOP_MARGIN

    natural_x = GAP + column * (TILE_SIZE + GAP) + TILE_SIZE // 2
    natural_y = TOP_MARGIN + 3 * (FONT_SIZE + 4) + TILE_SIZE // 2
    page.locator(f"#{elem_id} img").scroll_into_view_if_needed()
    page.evaluate(
        """([id, x, y]) => {
            const img = document.querySelector(`#${id} img`);
            const box = img.getBoundingClientRect();
            window.__tileClick = [box.left + x * box.width / img.naturalWidth, box.top + y * box.height / img.naturalHeight];
        }""",
        [elem_id, natural_x, natural_y],
    )
    page.mouse.click(*page.evaluate("() => window.__tileClick"))


def test_hovering_a_point_shows_its_thumbnail(page, served):
    _, workspace = served
    _open_embeddings(page)
    coords = workspace.projection_coords("pca")
    page.mouse.move(*_screen_point(page, *coords[5]))
    page.wait_for_function(
        "() => { const img = document.querySelector('#projection-plot .plotly-hover-thumbnail');"
        " return img && img.style.display === 'block' && img.src.startsWith('data:image/webp') && img.naturalWidth > 0; }",
        timeout=TIMEOUT_MS,
    )


def test_a_box_selection_shows_a_grid_of_the_selected_items_and_their_labels(page, served):
    _, workspace = served
    _open_embeddings(page)
    coords = workspace.projection_coords("pca")
    low, high = np.percentile(coords, 10, axis=0), np.percentile(coords, 90, axis=0)
    page.evaluate(
        "() => Plotly.relayout(document.querySelector('#projection-plot .plotly-click-plot'), {dragmode: 'select'})"
    )
    start, end = _screen_point(page, low[0], high[1]), _screen_point(page, high[0], low[1])
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    _wait_image(page, "selection-grid")
    inside = ((coords >= low) & (coords <= high)).all(axis=1).sum()
    page.locator("#selection-labels [data-testid=cell-0-1]").first.wait_for(timeout=TIMEOUT_MS)
    counts = page.locator("#selection-labels [data-testid^=cell-]").all_inner_texts()
    assert sum(int(text) for text in counts[0::2]) == inside  # (selected, label) per row


def test_clicking_a_train_point_shows_neighbours_of_its_split_and_a_tile_opens_its_row(page, served):
    _, workspace = served
    _open_embeddings(page)
    coords = workspace.projection_coords("pca")
    train_item = int(np.flatnonzero(workspace.df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT)[0])
    page.mouse.click(*_screen_point(page, *coords[train_item]))
    first = _wait_image(page, "clicked-row")
    assert page.locator("#clicked-row-id input").input_value() == str(train_item)
    (row,) = workspace.item_row_layout(train_item, 5)[0].rows
    assert set(workspace.df[C.SPLIT_COLUMN].iloc[[t.item_id for t in row[1:]]]) == {C.TRAIN_SPLIT}
    _click_tile(page, "clicked-row", 1)  # the nearest neighbour: its own row opens in its place
    _wait_image(page, "clicked-row", first)
    assert page.locator("#clicked-row-id input").input_value() == str(row[1].item_id)


def test_a_query_grid_tile_opens_that_items_row(page, served):
    _, workspace = served
    page.get_by_role("tab", name="Queries", exact=True).click()
    _wait_image(page, "query-grid")
    _click_tile(page, "query-grid", 2)  # the second-nearest gallery item of the first query
    _wait_image(page, "query-item-row")
    first_query = workspace.query_grid_layout(workspace.default_query_ids(), 5)[0].rows[0]
    assert page.locator("#query-item-row-id input").input_value() == str(first_query[2].item_id)


def test_a_label_filter_shows_the_queries_of_that_label(page, served):
    _, workspace = served
    page.get_by_role("tab", name="Queries", exact=True).click()
    old = _wait_image(page, "query-grid")
    label = workspace.label_table().query("queries > 0")["label"].iloc[0]
    page.locator("#query-label input").fill(label)
    page.get_by_role("option", name=label, exact=True).click()
    _wait_image(page, "query-grid", old)
    expected = workspace.label_queries_text(label)
    page.wait_for_function(
        "expected => document.querySelector('#query-ids textarea, #query-ids input').value === expected",
        arg=expected,
        timeout=TIMEOUT_MS,
    )


def test_a_confusions_row_click_shows_that_pairs_queries(page, served):
    _, workspace = served
    page.get_by_role("tab", name="Confusions", exact=True).click()
    page.locator("#confusions-show").click()
    first = page.locator("#confusions-table [data-testid=cell-0-0]")
    first.wait_for(timeout=TIMEOUT_MS)
    expected = workspace.confusions_table(1).iloc[0]
    assert first.inner_text().strip() == str(expected.iloc[0])  # the query label, by name
    page.locator("#confusions-heatmap .main-svg").first.wait_for(timeout=TIMEOUT_MS)
    first.click()
    _wait_image(page, "confusion-queries")
    layout, _ = workspace.confusion_queries_layout(expected.iloc[0], expected.iloc[1], 5)
    _click_tile(page, "confusion-queries", 1)  # the first query's nearest item: its own row opens below
    _wait_image(page, "confusion-item-row")
    assert page.locator("#confusion-item-row-id input").input_value() == str(layout.rows[0][1].item_id)


def test_suspected_label_errors_show_ranked_rows_and_download_as_csv(page, served, tmp_path):
    _, workspace = served
    page.get_by_role("tab", name="Label errors", exact=True).click()
    page.locator("#suspects-show").click()
    first = page.locator("#suspects-table [data-testid=cell-0-0]")
    first.wait_for(timeout=TIMEOUT_MS)
    assert int(first.inner_text()) == int(workspace.suspected_errors(1).iloc[0, 0])  # the top item id
    _wait_image(page, "suspects-rows-image")
    page.locator("#suspects-download").click()
    link = page.locator("#suspects-file a[download]").first
    link.wait_for(timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "suspects.csv"
    download.value.save_as(saved)
    header = saved.read_text().splitlines()[0]
    assert header.startswith(str(workspace.suspected_errors(1).columns[0]))
