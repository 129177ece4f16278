"""The app's scriptable API, driven with gradio_client against the app served on localhost in this test."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from tiny_workspace import build_tiny_workspace, serve_app


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_tiny_workspace(tmp_path_factory.mktemp("app-api"))


@pytest.fixture(scope="module")
def client(workspace):
    with serve_app(workspace) as url:
        yield Client(url, verbose=False)


def _plotly_array(value) -> np.ndarray:
    """Plotly's JSON writes numpy arrays as {"dtype", "bdata" (base64)}; plain lists stay lists."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def _table_rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def test_named_endpoints_are_listed(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/query_grid", "/worst_queries", "/metrics", "/projection", "/search"} <= set(endpoints)


def _query_items(workspace, *positions: int) -> str:
    """Item ids of the queries at these positions: what `/query_grid` takes."""
    return ", ".join(str(workspace.items.query_items[p]) for p in positions)


def test_query_grid_returns_one_row_per_query(client, workspace):
    one = Image.open(client.predict(_query_items(workspace, 0), 3, api_name="/query_grid"))
    three = Image.open(client.predict(_query_items(workspace, 0, 3, 7), 3, api_name="/query_grid"))
    assert three.height > 2 * one.height
    assert three.width == one.width
    second_page = Image.open(client.predict(_query_items(workspace, *range(12)), 3, 2, api_name="/query_grid"))
    assert second_page.height < 12 * one.height  # a page, not all twelve rows


def test_query_grid_out_of_range_says_the_valid_range_and_app_keeps_serving(client, workspace):
    with pytest.raises(AppError, match=rf"this dataset has {len(workspace.df)} items \(0\.\.{len(workspace.df) - 1}\)"):
        client.predict(f"{_query_items(workspace, 0)}, 999", 3, api_name="/query_grid")
    with pytest.raises(AppError, match="not a whole number"):
        client.predict("zero", 3, api_name="/query_grid")
    with pytest.raises(AppError, match="Item 0 is not a query"):
        client.predict("0", 3, api_name="/query_grid")
    assert Image.open(client.predict(_query_items(workspace, 1), 2, api_name="/query_grid")).width > 0


def test_worst_queries_returns_grid_and_their_ids_and_values(client, workspace):
    image, table = client.predict("OVERALL/map/5", 3, 2, api_name="/worst_queries")
    rows = _table_rows(table)
    assert Image.open(image).width > 0
    assert len(rows) == 3
    values = [row["OVERALL/map/5"] for row in rows]
    assert values == sorted(values)
    assert values[0] == pytest.approx(min(workspace.per_query_values("OVERALL/map/5")), abs=1e-4)


def test_worst_queries_unknown_metric_lists_the_choices(client):
    with pytest.raises(AppError, match="Unknown metric 'OVERALL/nope/5'.*OVERALL/map/5"):
        client.predict("OVERALL/nope/5", 3, 2, api_name="/worst_queries")


def test_metrics_table_has_the_overall_values(client, workspace):
    rows = _table_rows(client.predict(api_name="/metrics"))
    by_key = {f"{r['category']}/{r['metric']}/{r['k']}": r["value"] for r in rows}
    expected = workspace.evaluation().metrics_flat
    assert by_key["OVERALL/cmc/1"] == pytest.approx(expected["OVERALL/cmc/1"], abs=1e-4)
    assert by_key["OVERALL/map/5"] == pytest.approx(expected["OVERALL/map/5"], abs=1e-4)


def test_projection_pca_coloured_by_label_has_every_item(client, workspace):
    plot = client.predict("pca", "label", api_name="/projection")
    traces = json.loads(plot)["data"]
    item_ids = sorted(int(i) for trace in traces for i in _plotly_array(trace["customdata"]))
    assert item_ids == list(range(len(workspace.df)))
    assert {trace["name"] for trace in traces} == set(workspace.label_table()["label"])  # "name (number)"


def test_projection_bad_method_or_colouring_names_the_choices(client):
    with pytest.raises(AppError, match=r"'tsne'.*not in the list of choices: \['umap', 'pca'\]"):
        client.predict("tsne", "label", api_name="/projection")
    with pytest.raises(AppError, match="shoe size.*not in the list of choices"):
        client.predict("pca", "shoe size", api_name="/projection")


def test_search_with_a_dataset_image_finds_it_first(client, workspace):
    gallery_row = int(workspace.items.gallery_items[0])
    image, table = client.predict(handle_file(workspace.items.paths[gallery_row]), 3, api_name="/search")
    rows = _table_rows(table)
    assert Image.open(image).width > 0
    assert len(rows) == 3
    assert rows[0]["item id"] == gallery_row
    assert rows[0]["distance"] == pytest.approx(0.0, abs=1e-3)


def test_search_without_image_asks_for_one(client):
    with pytest.raises(AppError, match="upload an image"):
        client.predict(None, 3, api_name="/search")


def test_search_with_a_file_that_is_not_an_image_names_it(client, tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are words, not pixels")
    with pytest.raises(AppError, match=r"cannot identify image file .*notes\.png"):
        client.predict(handle_file(str(not_an_image)), 3, api_name="/search")


def test_train_runs_the_train_tab_defaults_and_returns_the_epochs_with_the_baseline_first(client, workspace):
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/train"]
    assert [parameter["parameter_name"] for parameter in endpoint["parameters"]] == ["epochs"]
    own_session = Client(client.src, verbose=False)  # training changes that session only, not `client`'s
    table = own_session.predict(2, api_name="/train")
    rows = _table_rows(table)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert rows[0]["loss"] is None and rows[1]["loss"] > 0  # epoch 0 is the validation before training
    assert rows[0]["val_cmc_1"] == pytest.approx(workspace.evaluation().metrics_flat["OVERALL/cmc/1"], abs=1e-4)
    assert set(table["headers"]) >= {"epoch", "loss", "active_tri", "val_cmc_1", "val_map_5"}
    with pytest.raises(AppError, match="less than minimum value 1"):  # the epochs field's own check
        own_session.predict(0, api_name="/train")
