"""`page_views`: every value the page shows after a change, in one call, keeping the user's choices where valid."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from tiny_workspace import build_tiny_workspace

from explorer.data.shapes import CSV_NAME
from explorer.workspace import Workspace
from explorer.workspace.inputs import DEFAULT_WORST_METRIC
from explorer.workspace.views import page_views


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_tiny_workspace(tmp_path_factory.mktemp("views"))


def test_valid_choices_are_kept_and_every_field_is_what_the_workspace_says(workspace):
    wanted = ", ".join(str(i) for i in workspace.items.query_items[[1, 4]])  # item ids of two queries
    views = page_views(workspace, wanted, 2, "OVERALL/cmc/1", 3, "pca", "split")
    assert views.query_ids == wanted
    assert views.metric == "OVERALL/cmc/1"
    assert views.n_instances == 2
    assert views.header == workspace.describe()
    assert views.warnings == workspace.warnings_text()
    assert views.summary.equals(workspace.data_summary())
    assert views.preview.equals(workspace.data_preview())
    assert views.metrics_note == workspace.no_relevant_gallery_text()
    assert views.metrics_table.equals(workspace.metrics_table())
    assert views.metric_names == workspace.metric_names()
    assert np.array_equal(np.asarray(views.query_grid), np.asarray(workspace.query_grid(wanted, 2)))
    worst_grid, worst_table = workspace.worst_queries("OVERALL/cmc/1", 3, 2)
    assert np.array_equal(np.asarray(views.worst_grid), np.asarray(worst_grid))
    assert views.worst_table.equals(worst_table)
    assert views.projection.to_json() == workspace.projection("pca", "split").to_json()
    assert views.label_table.equals(workspace.label_table())
    assert views.label_choices == workspace.label_table()["label"].tolist()
    assert (views.model_name, views.model_weights) == (workspace.extractor.choice.name, "random")


def test_choices_no_longer_valid_fall_back_to_the_defaults(workspace):
    views = page_views(workspace, "0, 999", 10_000, "OVERALL/nope/5", 10_000, "pca", "label")
    first = ", ".join(str(i) for i in workspace.items.query_items[:3])
    assert views.query_ids == first
    assert views.query_ids_label == f"Item ids of queries ({workspace.n_queries} queries), e.g. {first}"
    assert views.metric == DEFAULT_WORST_METRIC
    assert views.n_instances == workspace.max_instances()
    assert len(views.worst_table) == workspace.n_queries


def test_embeddings_from_a_file_show_no_model(workspace, tmp_path):
    np.save(tmp_path / "embeddings.npy", workspace.embeddings())
    data = workspace.dataset.root / CSV_NAME
    without_model = Workspace.build(str(data), embeddings=tmp_path / "embeddings.npy", cache_dir=tmp_path / "cache")
    views = page_views(without_model, "0", 2, DEFAULT_WORST_METRIC, 2, "pca", "label")
    assert (views.model_name, views.model_weights) == (None, None)
    assert "embeddings from embeddings.npy" in views.header


def test_the_workspace_module_does_not_import_the_views():
    """`views` is built on `Workspace`; the other way round would be an import circle."""
    source = (Path(__file__).parents[1] / "explorer" / "workspace" / "workspace.py").read_text()
    assert not re.search(r"^\s*(from|import) .*\bviews\b", source, flags=re.MULTILINE)
