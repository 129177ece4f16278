"""A plotly figure in a `gr.HTML` that reports which point the user clicked.

`gr.Plot` cannot send plotly click events to Python, so this component renders the figure itself with plotly.js
(served from the installed plotly package: no CDN, works offline) and triggers a `point_click` event carrying the
clicked point's `customdata` (the item id, see `explorer.viz.projection.projection_figure`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
import plotly
import plotly.graph_objects as go
import plotly.io

PLOTLY_JS_PATH = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
POINT_CLICK_EVENT = "point_click"  # spelled out in _JS_ON_LOAD too: Gradio finds custom events there
ITEM_ID_KEY = "item_id"  # the key of the event data that _JS_ON_LOAD sends

_PLOT_TEMPLATE = '<div class="plotly-click-plot" style="width: 100%; height: ${plot_height}px;"></div>'

# Runs once per rendered component. `props.value` is the figure as JSON; `watch` redraws it when a handler returns a
# new figure. The template never mentions `value`, so Gradio leaves the plot's DOM alone when the value changes.
_JS_ON_LOAD = """
const plotDiv = element.querySelector('.plotly-click-plot');
let clickBound = false;
function draw() {
    if (!props.value) {
        Plotly.purge(plotDiv);
        clickBound = false;
        return;
    }
    const figure = typeof props.value === 'string' ? JSON.parse(props.value) : props.value;
    Plotly.react(plotDiv, figure.data, figure.layout, {responsive: true, displaylogo: false});
    if (!clickBound) {
        plotDiv.on('plotly_click', (event) => {
            const point = event.points && event.points[0];
            if (!point || point.customdata === undefined) return;
            const id = Array.isArray(point.customdata) ? point.customdata[0] : point.customdata;
            trigger('point_click', {item_id: id});
        });
        clickBound = true;
    }
}
draw();
watch('value', draw);
new ResizeObserver(() => { if (clickBound && plotDiv.offsetWidth > 0) Plotly.Plots.resize(plotDiv); }).observe(plotDiv);
"""


@functools.cache
def plotly_js_url() -> str:
    """URL of the installed package's plotly.min.js, made servable by the Gradio app (a relative URL, so it also
    works when the app is mounted under a sub-path)."""
    if not PLOTLY_JS_PATH.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {PLOTLY_JS_PATH}; reinstall the plotly package.")
    gr.set_static_paths([PLOTLY_JS_PATH])
    return f"gradio_api/file={quote(str(PLOTLY_JS_PATH))}"


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
