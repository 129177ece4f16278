"""The plotly click component without a browser: value conversion, plotly.js serving, handler wiring."""

import json
import sys
from pathlib import Path
from urllib.parse import unquote

import gradio as gr
import plotly.graph_objects as go

from explorer.ui.plotly_click import PLOTLY_JS_PATH, figure_to_value, on_point_click, plotly_click, plotly_js_url


def _figure() -> go.Figure:
    return go.Figure(go.Scatter(x=[0.0, 1.0], y=[1.0, 0.0], customdata=[7, 9], mode="markers"))


def test_figure_becomes_plotly_json_with_its_customdata():
    value = json.loads(figure_to_value(_figure()))
    assert value["data"][0]["customdata"] == [7, 9]
    assert figure_to_value(None) is None


def test_component_accepts_a_figure_as_initial_value_and_as_handler_output():
    with gr.Blocks():
        plot = plotly_click(_figure())
    assert json.loads(plot.value)["data"][0]["customdata"] == [7, 9]
    assert json.loads(plot.postprocess(_figure()))["data"][0]["x"] == [0.0, 1.0]


def test_plotly_js_is_the_installed_packages_served_from_a_copy_outside_the_environment():
    url = plotly_js_url()
    assert PLOTLY_JS_PATH.stat().st_size > 1_000_000
    assert url.startswith("gradio_api/file=") and url.endswith(".min.js")
    served = Path(unquote(url.removeprefix("gradio_api/file=")))
    assert served.read_bytes() == PLOTLY_JS_PATH.read_bytes() and gr.utils.is_static_file(served)
    assert not served.is_relative_to(sys.prefix)  # the page config names no folder of the app's environment


def test_point_click_passes_the_item_id_and_inputs_to_the_handler():
    def show_item(item_id: int, note: str) -> str:
        return f"{note}: item {item_id}"

    with gr.Blocks():
        plot = plotly_click(_figure())
        note = gr.Textbox("clicked")
        dependency = on_point_click(plot, show_item, inputs=note, outputs=note)
    handler = dependency.fn
    assert handler.__name__ == "show_item"  # the default api_name
    assert handler(gr.EventData(plot, {"item_id": 9}), "clicked") == "clicked: item 9"
