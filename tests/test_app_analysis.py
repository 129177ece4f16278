"""Confusions and suspected label errors: the workspace's tables, the `/confusions` and `/suspected_errors`
endpoints, and the two views in Chromium (a confusion click opens that pair's queries)."""

from __future__ import annotations

import pandas as pd
import pytest
from gradio_client import Client
from tiny_workspace import build_tiny_workspace, serve_app

from explorer.analysis import label_confusions, suspected_label_errors
from explorer.errors import InputError
from explorer.workspace import WorkspaceSession

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("analysis"))
    WorkspaceSession(workspace)
    return workspace


@pytest.fixture(scope="module")
def url(workspace):
    with serve_app(workspace) as served:
        yield served


def _rows(table: dict) -> list[dict]:
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def test_confusions_table_is_the_analysis_of_the_evaluation_with_label_names(workspace):
    items = workspace.items
    rows = items.validation_items
    expected = label_confusions(workspace.evaluation(), items.labels[rows], items.label_names[rows]).table
    table = workspace.confusions_table(3)
    assert list(table.columns) == ["query label", "retrieved label", "count", "share"]
    pd.testing.assert_frame_equal(table, expected.head(3).round({"share": 4}))
    assert set(table["query label"]) <= set(items.label_names)  # names, not numbers


def test_a_confusion_pair_opens_its_queries_and_an_unknown_pair_gets_a_message(workspace):
    first = workspace.confusions_table(1).iloc[0]
    picture = workspace.confusion_queries(first["query label"], first["retrieved label"], 3)
    assert picture.height > 0
    layout, heading = workspace.confusion_queries_layout(first["query label"], first["retrieved label"], 3)
    pair_queries = workspace.confusions().query_ids[0]
    assert [row[0].item_id for row in layout.rows] == workspace.items.query_items[
        pair_queries[: len(layout.rows)]
    ].tolist()
    assert heading.startswith(f"{first['query label']} queries retrieving {first['retrieved label']}: 1-")
    with pytest.raises(InputError, match="pick a row of the confusions table"):
        workspace.confusion_queries("no such label", first["retrieved label"], 3)


def test_suspected_errors_rank_like_the_analysis_and_export_everything(workspace, tmp_path):
    table = workspace.suspected_errors(4)
    expected = suspected_label_errors(workspace.embeddings(), workspace.df).head(4).round({"score": 4})
    pd.testing.assert_frame_equal(table, expected)
    assert {"item id", "path", "given label", "suggested label", "score"} <= set(table.columns)
    assert not table["path"].str.startswith("/").any()  # relative to the dataset root
    csv = pd.read_csv(workspace.suspected_errors_csv(tmp_path))
    assert len(csv) == len(workspace.df) and csv["item id"].tolist()[:4] == table["item id"].tolist()
    with pytest.raises(InputError, match="n must be between 1 and"):
        workspace.suspected_errors(0)


def test_confusions_and_suspected_errors_are_named_endpoints(url, workspace):
    client = Client(url, verbose=False)
    confusions = _rows(client.predict(2, api_name="/confusions"))
    assert [row["count"] for row in confusions] == workspace.confusions_table(2)["count"].tolist()
    suspects = _rows(client.predict(3, api_name="/suspected_errors"))
    assert [row["item id"] for row in suspects] == workspace.suspected_errors(3)["item id"].tolist()


@pytest.mark.browser
def test_a_confusion_click_opens_the_pairs_queries_and_the_label_errors_view_shows_rows(url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url)
        page.get_by_role("tab", name="Confusions", exact=True).click()
        page.locator("#confusions-show").click()
        page.locator("#confusions-table [data-testid=cell-0-0]").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#confusions-heatmap .main-svg").first.wait_for(timeout=TIMEOUT_MS)
        page.locator("#confusions-table [data-testid=cell-0-1]").first.click()
        page.wait_for_function(
            "() => document.querySelector('#confusion-queries img')?.naturalWidth > 0", timeout=TIMEOUT_MS
        )
        page.get_by_role("tab", name="Label errors", exact=True).click()
        page.locator("#suspects-show").click()
        page.locator("#suspects-table [data-testid=cell-0-0]").first.wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelector('#suspects-rows-image img')?.naturalWidth > 0", timeout=TIMEOUT_MS
        )
    finally:
        page.close()
