"""Clicking a point of a `plotly_click` figure in a real browser (Debian's Chromium) reaches the Python handler."""

import time

import gradio as gr
import numpy as np
import pytest
from tiny_workspace import free_port

from explorer.const import LABELS_COLUMN
from explorer.ui.plotly_click import on_point_click, plotly_click
from explorer.viz.projection import WEBGL_MIN_POINTS, projection_figure

pytestmark = pytest.mark.browser
SMALL_IDS_START, LARGE_IDS_START = 100, 5000
CLICKED_POINT = 3


def _grid_figure(n_items: int, first_id: int):
    """Points on a grid (far apart, so a click hits exactly one) with ids first_id, first_id + 1, ..."""
    side = int(np.ceil(np.sqrt(n_items)))
    coords = np.array([(i % side, i // side) for i in range(n_items)], dtype=float)
    ids = list(range(first_id, first_id + n_items))
    labels = ["bird"] * n_items
    return projection_figure(coords, ids, labels, [f"img_{i}.jpg" for i in ids], labels, LABELS_COLUMN), coords


SMALL_FIGURE, SMALL_COORDS = _grid_figure(20, SMALL_IDS_START)
LARGE_FIGURE, LARGE_COORDS = _grid_figure(WEBGL_MIN_POINTS + 500, LARGE_IDS_START)


@pytest.fixture(scope="module")
def app():
    """A page with the component, a box showing the clicked id, and a button that swaps in a WebGL figure."""
    received: list[int] = []

    def show_item(item_id: int) -> str:
        received.append(item_id)
        return str(item_id)

    with gr.Blocks() as demo:
        plot = plotly_click(SMALL_FIGURE)
        clicked = gr.Textbox(label="clicked item", elem_id="clicked")
        large = gr.Button("large", elem_id="large")
        on_point_click(plot, show_item, outputs=clicked)
        large.click(lambda: LARGE_FIGURE, outputs=plot)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield demo, received
    demo.close()


@pytest.fixture
def page(app, browser):
    demo, received = app
    received.clear()
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(demo.local_url)
    page.wait_for_selector(".plotly-click-plot .main-svg", timeout=60_000)
    yield page
    page.close()


def _click_data_point(page, x: float, y: float) -> None:
    """Click where plotly draws data coordinates (x, y)."""
    position = page.evaluate(
        """([x, y]) => {
            const plot = document.querySelector('.plotly-click-plot');
            const layout = plot._fullLayout;
            const box = plot.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(x), box.top + layout._size.t + layout.yaxis.d2p(y)];
        }""",
        [float(x), float(y)],
    )
    page.mouse.move(*position)
    page.mouse.click(*position)


def _wait_for(received: list[int], timeout_s: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    return received


def test_clicking_a_point_sends_its_item_id_to_python(app, page):
    _, received = app
    _click_data_point(page, *SMALL_COORDS[CLICKED_POINT])
    assert _wait_for(received) == [SMALL_IDS_START + CLICKED_POINT]
    page.wait_for_function(
        "expected => document.querySelector('#clicked textarea').value === expected",
        arg=str(SMALL_IDS_START + CLICKED_POINT),
    )


def test_a_new_webgl_figure_from_a_handler_is_drawn_and_clickable(app, page):
    _, received = app
    page.click("#large")
    page.wait_for_selector(".plotly-click-plot .gl-container canvas", timeout=30_000)
    page.wait_for_function("() => document.querySelector('.plotly-click-plot')._fullData[0].type === 'scattergl'")
    _click_data_point(page, *LARGE_COORDS[CLICKED_POINT])
    assert _wait_for(received) == [LARGE_IDS_START + CLICKED_POINT]
