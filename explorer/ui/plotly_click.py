"""A plotly figure in a `gr.HTML` that reports which point the user clicked.

`gr.Plot` cannot send plotly click events to Python, so this component renders the figure itself with plotly.js
(served from the installed plotly package: no CDN, works offline) and triggers a `point_click` event carrying the
clicked point's `customdata` (the item id, see `explorer.viz.projection.projection_figure`), and a
`points_selected` event carrying the ids of a box / lasso selection. Hovering a point shows its thumbnail, fetched
for that point only through the component's server function (`thumbnail`).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
import plotly
import plotly.graph_objects as go
import plotly.io

from explorer.viz.thumbnails import hover_thumbnail

PLOTLY_JS_PATH = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
POINT_CLICK_EVENT = "point_click"  # spelled out in _JS_ON_LOAD too: Gradio finds custom events there
POINTS_SELECTED_EVENT = "points_selected"  # likewise
ITEM_ID_KEY = "item_id"  # the key of the click event's data that _JS_ON_LOAD sends
ITEM_IDS_KEY = "item_ids"  # the key of the selection event's data
MAX_SELECTED_IDS = 10_000  # a selection sends at most this many ids (the page says when it cut one)

_PLOT_TEMPLATE = (
    '<div class="plotly-click-plot" style="width: 100%; height: ${plot_height}px;"></div>'
    '<img class="plotly-hover-thumbnail" alt="" style="position: fixed; display: none; z-index: 1000;'
    ' width: 128px; height: 128px; border: 2px solid #999; background: white; pointer-events: none;">'
)

# Runs once per rendered component. `props.value` is the figure as JSON; `watch` redraws it when a handler returns a
# new figure. The template never mentions `value`, so Gradio leaves the plot's DOM alone when the value changes.
# A click rings the clicked point (a layout shape sized in pixels, so it works for WebGL traces too) and sends its
# item id; a box / lasso selection sends the selected ids (at most MAX_SELECTED_IDS); hovering a point asks the
# server for that one point's thumbnail (`server.thumbnail`), cached in the page, shown beside the pointer.
_JS_ON_LOAD = """
const plotDiv = element.querySelector('.plotly-click-plot');
const hoverImage = element.querySelector('.plotly-hover-thumbnail');
const thumbnails = new Map();
let eventsBound = false;
let hovered = null;
function itemOf(point) {
    if (!point || point.customdata === undefined) return null;
    return Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
}
function ring(point) {
    const shape = {type: 'circle', xref: 'x', yref: 'y', xsizemode: 'pixel', ysizemode: 'pixel',
                   xanchor: point.x, yanchor: point.y, x0: -10, x1: 10, y0: -10, y1: 10,
                   line: {color: 'black', width: 3}};
    Plotly.relayout(plotDiv, {shapes: [shape]});
}
function showThumbnail(id, event) {
    const token = plotDiv.layout && plotDiv.layout.meta && plotDiv.layout.meta.thumbnails;
    if (!token || id === null) return;
    hovered = id;
    const place = (uri) => {
        if (hovered !== id || !uri) return;
        hoverImage.src = uri;
        hoverImage.style.left = (event.clientX + 16) + 'px';
        hoverImage.style.top = Math.max(0, event.clientY - 140) + 'px';
        hoverImage.style.display = 'block';
    };
    const key = token + ':' + id;
    if (thumbnails.has(key)) return place(thumbnails.get(key));
    server.thumbnail(token, id).then((uri) => { thumbnails.set(key, uri); place(uri); });
}
function bindEvents() {
    plotDiv.on('plotly_click', (event) => {
        const point = event.points && event.points[0];
        const id = itemOf(point);
        if (id === null) return;
        ring(point);
        trigger('point_click', {item_id: id});
    });
    plotDiv.on('plotly_selected', (event) => {
        if (!event || !event.points) return;
        const ids = event.points.map(itemOf).filter((id) => id !== null);
        trigger('points_selected', {item_ids: ids.slice(0, 10000), n_selected: ids.length});
    });
    plotDiv.on('plotly_deselect', () => trigger('points_selected', {item_ids: [], n_selected: 0}));
    plotDiv.on('plotly_hover', (event) => {
        const point = event.points && event.points[0];
        showThumbnail(itemOf(point), event.event || {clientX: 0, clientY: 0});
    });
    plotDiv.on('plotly_unhover', () => { hovered = null; hoverImage.style.display = 'none'; });
    eventsBound = true;
}
function draw() {
    if (!props.value) {
        Plotly.purge(plotDiv);
        eventsBound = false;
        return;
    }
    const figure = typeof props.value === 'string' ? JSON.parse(props.value) : props.value;
    Plotly.react(plotDiv, figure.data, figure.layout, {responsive: true, displaylogo: false});
    if (!eventsBound) bindEvents();
}
draw();
watch('value', draw);
new ResizeObserver(() => { if (eventsBound && plotDiv.offsetWidth > 0) Plotly.Plots.resize(plotDiv); }).observe(plotDiv);
"""


def thumbnail(request: list) -> str | None:
    """The page's `server.thumbnail(token, item_id)`: a hovered point's thumbnail as a data URI (None when the
    token or the id is not one the app handed out)."""
    if not isinstance(request, list) or len(request) != 2:
        return None
    return hover_thumbnail(*request)


@functools.cache
def plotly_js_url() -> str:
    """URL of plotly.min.js, made servable by the Gradio app (a relative URL, so it also works when the app is
    mounted under a sub-path). Served from a copy in the system temp folder: the page's config names the file's
    path, and the installed package's path would tell every visitor where the app and its environment live."""
    if not PLOTLY_JS_PATH.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {PLOTLY_JS_PATH}; reinstall the plotly package.")
    served = Path(tempfile.gettempdir()) / "metric-learning-explorer-static" / f"plotly-{plotly.__version__}.min.js"
    if not served.is_file() or served.stat().st_size != PLOTLY_JS_PATH.stat().st_size:
        served.parent.mkdir(parents=True, exist_ok=True)
        partial = served.with_name(f".{served.name}.{uuid.uuid4().hex}.tmp")
        shutil.copyfile(PLOTLY_JS_PATH, partial)
        os.replace(partial, served)  # atomic: another app process never serves half a file
    gr.set_static_paths([served])
    return f"gradio_api/file={quote(str(served))}"


def figure_to_value(figure: go.Figure | dict | str | None) -> str | None:
    """The component's value for a figure: plotly JSON (a str passes through, None clears the plot)."""
    if figure is None or isinstance(figure, str):
        return figure
    return plotly.io.to_json(figure, validate=False)


def plotly_click(
    figure: go.Figure | dict | str | None = None, *, plot_height: int = 600, **html_kwargs: Any
) -> gr.HTML:
    """A `gr.HTML` that draws a plotly figure and triggers `point_click` when a point is clicked.

    Handlers may return a `go.Figure` (or plotly JSON, or None to clear) straight into it. Register the click
    handler with `on_point_click`. Not a `gr.HTML` subclass on purpose: Gradio writes a `.pyi` stub next to the
    source of every component subclass it imports.
    """
    component = gr.HTML(
        value=figure_to_value(figure),
        html_template=_PLOT_TEMPLATE,
        js_on_load=_JS_ON_LOAD,
        head=f'<script src="{plotly_js_url()}"></script>',
        server_functions=[thumbnail],
        plot_height=plot_height,
        **html_kwargs,
    )
    component.postprocess = figure_to_value  # what handlers return (a Figure) becomes the JSON the page draws
    return component


def on_point_click(
    plot: gr.HTML,
    fn: Callable[..., Any],
    inputs: gr.components.Component | Sequence[gr.components.Component] | None = None,
    outputs: gr.components.Component | Sequence[gr.components.Component] | None = None,
    **listener_kwargs: Any,
) -> Any:
    """Calls `fn(item_id: int, *input_values)` when a point of `plot` (made by `plotly_click`) is clicked.

    Other keyword arguments go to the Gradio listener (api_name, show_progress, concurrency_limit, ...); the
    default api_name is `fn`'s name. Returns the Gradio dependency (for `.then`).
    """

    def handle_point_click(event: gr.EventData, *input_values: Any) -> Any:
        return fn(int(getattr(event, ITEM_ID_KEY)), *input_values)

    # fn's name becomes the default api_name; not functools.wraps, whose __wrapped__ would hide the EventData
    # parameter that Gradio looks for in the signature.
    handle_point_click.__name__ = handle_point_click.__qualname__ = getattr(fn, "__name__", POINT_CLICK_EVENT)
    return getattr(plot, POINT_CLICK_EVENT)(handle_point_click, inputs=inputs, outputs=outputs, **listener_kwargs)


def on_points_selected(
    plot: gr.HTML,
    fn: Callable[..., Any],
    inputs: gr.components.Component | Sequence[gr.components.Component] | None = None,
    outputs: gr.components.Component | Sequence[gr.components.Component] | None = None,
    **listener_kwargs: Any,
) -> Any:
    """Calls `fn(item_ids, *input_values)` when a box / lasso selection of `plot` ends (an empty list when it is
    cleared). The ids come from the page as sent: `fn` must check them."""

    def handle_points_selected(event: gr.EventData, *input_values: Any) -> Any:
        return fn(getattr(event, ITEM_IDS_KEY, None), *input_values)

    handle_points_selected.__name__ = handle_points_selected.__qualname__ = getattr(fn, "__name__", "selected")
    return getattr(plot, POINTS_SELECTED_EVENT)(
        handle_points_selected, inputs=inputs, outputs=outputs, **listener_kwargs
    )
