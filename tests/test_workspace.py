"""The app's backend object, driven directly: input checks, copy-on-write sessions, pictures, search, export,
training and comparison on a tiny generated dataset with a random-init test model."""

from __future__ import annotations

import copy
import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tiny_workspace import TINY_IMAGE_SIZE, TINY_MODEL, build_tiny_workspace

from explorer import const as C
from explorer.checks import check_count
from explorer.errors import InputError
from explorer.models import ViTExtractor
from explorer.training import train as train_module
from explorer.training.train import TrainingSettings
from explorer.workspace import WorkspaceSession
from explorer.workspace import workspace as workspace_module
from explorer.workspace.inputs import training_settings
from explorer.workspace.tables import training_curves
from explorer.workspace.uploads import unpack_upload


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The read-only default every session starts from (as the app uses it)."""
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("workspace"))
    WorkspaceSession(workspace)
    return workspace


@pytest.fixture
def session(shared):
    return WorkspaceSession(shared)


# -- user input -------------------------------------------------------------------------------------------


def test_check_count_gives_the_allowed_range():
    assert check_count("n_instances", 3.0, 1, 5) == 3
    with pytest.raises(InputError, match="n_instances must be between 1 and 5, got 9"):
        check_count("n_instances", 9, 1, 5)
    with pytest.raises(InputError, match="whole number"):
        check_count("n_instances", 2.5, 1, 5)
    for odd in (None, float("inf"), float("nan"), "3"):
        with pytest.raises(InputError, match="whole number"):
            check_count("n_instances", odd, 1, 5)
    assert check_count("n_instances", np.int64(4), 1, 5) == 4


def test_unpack_upload_refuses_members_outside_the_archive(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../escaped.txt", "x")
    with pytest.raises(InputError, match="points outside the archive"):
        unpack_upload(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_unpack_upload_refuses_a_file_that_is_not_a_zip(tmp_path):
    fake = tmp_path / "data.zip"
    fake.write_text("not a zip")
    with pytest.raises(InputError, match="not a zip file"):
        unpack_upload(fake, tmp_path / "out")


# -- sessions: shared default, copy on write ----------------------------------------------------------------


def test_session_reads_the_shared_default_until_it_changes_something(shared, session):
    assert session.workspace is shared
    own = session.edit()
    assert own is not shared and session.workspace is own
    assert session.edit() is own


def test_copy_shares_what_is_computed_and_changes_stay_private(shared, session):
    own = session.edit()
    assert own.embeddings() is shared.embeddings()  # nothing recomputed by the copy
    own.set_metric_top_k("2")
    assert own.metric_top_k == (1, 2, 5)
    assert shared.metric_top_k != own.metric_top_k
    assert "OVERALL/cmc/2" in own.evaluation().metrics_flat
    assert "OVERALL/cmc/2" not in shared.evaluation().metrics_flat


def test_the_shared_workspace_refuses_changes(shared):
    with pytest.raises(RuntimeError, match="read-only"):
        shared.set_metric_top_k("1")


def test_deep_copying_a_session_gives_a_fresh_one_on_the_same_shared_workspace(shared, session):
    session.edit()
    twin = copy.deepcopy(session)
    assert twin.workspace is shared
    assert session.workspace is not shared


def test_sessions_do_not_see_each_others_data(shared, tmp_path):
    first, second = WorkspaceSession(shared), WorkspaceSession(shared)
    first.edit().load_data("mock")
    assert first.workspace.dataset.name == "mock"
    assert second.workspace.dataset.name == shared.dataset.name
    assert len(second.workspace.df) == len(shared.df)


# -- views ------------------------------------------------------------------------------------------------


def _query_items(shared, *positions: int) -> str:
    """The item ids of the queries at these positions, as the Queries tab takes them."""
    return ", ".join(str(shared.items.query_items[p]) for p in positions)


def test_query_grid_has_one_row_per_query_and_a_column_per_instance(shared):
    one = shared.query_grid(_query_items(shared, 0), 2)
    three = shared.query_grid(_query_items(shared, 0, 3, 7), 2)
    wider = shared.query_grid(_query_items(shared, 0), 4)
    assert three.height > 2.5 * one.height
    assert wider.width > one.width


def test_query_grid_out_of_range_names_the_valid_range(shared):
    with pytest.raises(InputError, match=rf"out of range: this dataset has {len(shared.df)} items"):
        shared.query_grid(f"{shared.items.query_items[0]}, 99", 3)
    with pytest.raises(InputError, match="Item 0 is not a query"):
        shared.query_grid("0", 3)  # a train item: the message names queries to use instead
    with pytest.raises(InputError, match=f"n_instances must be between 1 and {shared.max_instances()}"):
        shared.query_grid(_query_items(shared, 0), 0)


def test_worst_queries_are_the_lowest_by_the_metric_ties_by_position(shared):
    values = shared.per_query_values("OVERALL/map/5")
    _, table = shared.worst_queries("OVERALL/map/5", 4, 3)
    expected = np.lexsort((np.arange(len(values)), values))[:4]
    assert table["item id"].tolist() == shared.items.query_items[expected].tolist()  # one numbering: item ids
    assert table["OVERALL/map/5"].tolist() == pytest.approx(np.round(values[expected], 4).tolist())


def test_worst_queries_rank_every_query_once_per_metric_and_k(session, monkeypatch):
    own = session.edit()
    ranked = []
    real = own.evaluation().worst_queries
    monkeypatch.setattr(type(own.evaluation()), "worst_queries", lambda self, *a: ranked.append(a) or real(*a))
    first = own.worst_queries("OVERALL/map/5", 4, 3)[1]
    assert ranked in ([], [("OVERALL/map/5", own.n_queries)])  # [] when an earlier test ranked it already
    before = len(ranked)
    assert own.worst_queries("OVERALL/map/5", 2, 3)[1].equals(first.head(2))  # a prefix of the same ranking
    assert own.worst_queries("OVERALL/map/5", 4, 3)[1].equals(first)
    assert len(ranked) == before
    own.set_metric_top_k("2")  # another evaluation: ranked again, once
    assert own.worst_queries("OVERALL/map/5", 4, 3)[1].equals(first)
    own.worst_queries("OVERALL/map/5", 3, 3)
    assert len(ranked) == before + 1


def test_worst_queries_unknown_metric_lists_the_choices(shared):
    with pytest.raises(InputError, match="Unknown metric 'map@5'.*OVERALL/map/5"):
        shared.worst_queries("map@5", 3, 3)


def test_metrics_table_matches_the_evaluation_with_overall_first(shared):
    table = shared.metrics_table()
    flat = shared.evaluation().metrics_flat
    assert table.iloc[0]["category"] == C.OVERALL_CATEGORIES_KEY
    row = table[(table["category"] == "OVERALL") & (table["metric"] == "map") & (table["k"] == "5")]
    assert row["value"].item() == pytest.approx(flat["OVERALL/map/5"], abs=1e-4)
    assert {"cmc", "precision", "map", "pcf"} <= set(table["metric"])


def test_data_summary_counts_splits_queries_and_gallery(shared):
    counts = dict(shared.data_summary().values.tolist())
    assert counts["images"] == "32" and counts["labels"] == "8"
    assert counts["train images"] == "16" and counts["validation images"] == "16"
    assert counts["queries"] == "16" and counts["gallery items"] == "16"


def test_projection_points_carry_item_ids_and_the_chosen_colouring(shared):
    figure = shared.projection("pca", "query/gallery")
    ids = sorted(int(i) for trace in figure.data for i in trace.customdata)
    assert ids == list(range(len(shared.df)))
    assert {trace.name for trace in figure.data} == {"train", "query+gallery"}


def test_projection_hit_at_1_is_known_for_queries_only(shared):
    figure = shared.projection("pca", "hit@1")
    by_name = {trace.name: len(trace.customdata) for trace in figure.data}
    assert by_name.get("n/a") == len(shared.df) - shared.n_queries
    assert by_name.get("hit", 0) + by_name.get("miss", 0) + by_name.get("no ground truth", 0) == shared.n_queries
    colours = {trace.name: trace.marker.color for trace in figure.data}
    assert colours.get("hit", "rgb(44,160,44)") == "rgb(44,160,44)"  # green, as hits in the grids
    assert colours.get("miss", "rgb(214,39,40)") == "rgb(214,39,40)"  # red, as misses


def test_projection_figures_reuse_one_point_table_until_the_embeddings_change(session, monkeypatch, tmp_path):
    own = session.edit()
    built = []
    real = workspace_module.label_choices
    monkeypatch.setattr(workspace_module, "label_choices", lambda items: built.append(1) or real(items))
    first = own.projection("pca", "hit@1")
    before = len(built)  # 0 when an earlier test drew this workspace's projection already
    assert own.projection("pca", "hit@1").to_json() == first.to_json()  # the same picture from the same table
    own.projection("pca", "split")
    assert len(built) == before <= 1
    np.save(tmp_path / "one_point.npy", np.ones_like(own.embeddings()))  # every query's first result is a tie
    own.use_embeddings(tmp_path / "one_point.npy")
    changed = {trace.name: len(trace.customdata) for trace in own.projection("pca", "hit@1").data}
    assert len(built) == before + 1  # new embeddings: a new table, coloured by the new evaluation's hit@1
    assert changed == {"n/a": len(own.df) - own.n_queries, **_hit_counts(own)}


def _hit_counts(workspace) -> dict[str, int]:
    """hit@1 of every query straight from the evaluation (the projection's colouring must agree)."""
    hits = workspace.per_query_values("OVERALL/cmc/1")
    no_truth = workspace.evaluation().retrieval.n_gt.numpy() == 0
    counts = {"hit": int(((hits == 1) & ~no_truth).sum()), "miss": int(((hits == 0) & ~no_truth).sum())}
    counts["no ground truth"] = int(no_truth.sum())
    return {name: count for name, count in counts.items() if count}


def test_projection_rejects_an_unknown_colouring(shared):
    with pytest.raises(InputError, match="color_by must be one of"):
        shared.projection("pca", "shoe size")


def test_item_row_of_a_query_is_its_evaluation_row(shared):
    query_item = int(shared.items.query_items[2])
    row, grid = shared.item_row_layout(query_item, 3)[0], shared.query_grid_layout(str(query_item), 3)[0]
    assert row == grid


def test_item_row_of_a_train_item_is_a_search_row_and_out_of_range_is_refused(shared):
    train_item = int(np.flatnonzero(shared.df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT)[0])
    assert shared.item_row(train_item, 3).width > 0
    with pytest.raises(InputError, match=rf"valid ids are 0\.\.{len(shared.df) - 1}"):
        shared.item_row(len(shared.df), 3)


def test_search_with_a_gallery_image_finds_it_first_at_distance_zero(shared):
    row = int(shared.items.gallery_items[5])
    picture, table = shared.search(Image.open(shared.items.paths[row]), 4)
    assert table["item id"].iloc[0] == row
    assert table["distance"].iloc[0] == pytest.approx(0.0, abs=1e-3)
    assert table["distance"].is_monotonic_increasing
    assert len(table) == 4 and picture.width > 0


def test_search_without_an_image_asks_for_one(shared):
    with pytest.raises(InputError, match="upload an image"):
        shared.search(None, 3)


def test_export_writes_embeddings_metrics_and_projection(shared, session):
    files = {path.name: path for path in session.export(["pca"])}
    assert all(path.is_relative_to(session.files.root) for path in files.values())  # removed with the session
    embeddings = np.load(files["embeddings.npy"])
    table = pd.read_parquet(files["embeddings.parquet"])
    assert embeddings.shape == shared.embeddings().shape
    assert table[C.PATHS_COLUMN].tolist() == shared.df[C.PATHS_COLUMN].tolist()  # relative: no server folder
    assert table[C.LABELS_COLUMN].tolist() == shared.df[C.LABELS_COLUMN].tolist()
    assert np.allclose(np.stack(table[C.EMBEDDING_COLUMN].to_numpy()), embeddings)
    assert json.loads(files["metrics.json"].read_text())["metrics"]["OVERALL/map/5"] == pytest.approx(
        shared.evaluation().metrics_flat["OVERALL/map/5"]
    )
    assert len(pd.read_csv(files["metrics.csv"])) == len(shared.metrics_table())
    assert len(pd.read_csv(files["projection_pca.csv"])) == len(shared.df)


# -- data and model changes -------------------------------------------------------------------------------


def test_uploaded_zip_of_an_image_folder_becomes_the_dataset(session, tmp_path):
    source = session.workspace
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for row, path in enumerate(source.items.paths[:12]):
            zipped.write(path, f"birds/class_{row % 4}/{row}.jpg")
    session.load_uploaded_zip(archive)
    own = session.workspace
    counts = dict(own.data_summary().values.tolist())
    assert counts["images"] == "12" and counts["labels"] == "4"
    unpacked = own.dataset.root
    assert unpacked.is_dir() and unpacked.is_relative_to(session.files.root)
    session.load_data("mock")  # the next dataset removes the unpacked upload
    assert not unpacked.exists()


def test_a_zip_that_fails_to_load_leaves_nothing_behind(session, tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data.csv", "label,path\n0,a.jpg\n")  # no split / is_query / is_gallery columns
    uploads = session.files.root / "uploads"
    with pytest.raises(ValueError, match="Missing required column"):
        session.load_uploaded_zip(archive)
    assert not any(uploads.iterdir())


def test_set_model_rejects_unknown_names_and_missing_checkpoints(session):
    own = session.edit()
    with pytest.raises(ValueError, match="Unknown architecture 'no_such_net'"):
        own.set_model("no_such_net", "random")
    with pytest.raises(InputError, match="needs a checkpoint file"):
        own.set_model(TINY_MODEL, "checkpoint")


def test_checkpoint_download_loads_back_to_the_same_embeddings(session):
    own = session.edit()
    path = session.save_checkpoint()
    before = own.embeddings()
    own.set_model(TINY_MODEL, "checkpoint", str(path))
    assert np.allclose(own.embeddings(), before, atol=1e-5)


def test_a_loaded_checkpoint_is_named_by_its_architecture_not_the_name_field(session):
    own = session.edit()
    path = session.save_checkpoint()
    own.set_model("resnet18", "checkpoint", str(path))
    assert own.extractor.choice.name == TINY_MODEL
    assert own.extractor.description == f"{TINY_MODEL} (checkpoint {path.name}, {TINY_IMAGE_SIZE} px)"


def test_a_broken_checkpoint_upload_is_named_without_the_server_folder(session, tmp_path):
    upload = tmp_path / "server-upload-folder" / "mine.safetensors"
    upload.parent.mkdir()
    upload.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="mine.safetensors") as info:
        session.edit().set_model(TINY_MODEL, "checkpoint", str(upload))
    assert "server-upload-folder" not in str(info.value)


# -- training and compare ---------------------------------------------------------------------------------


def test_training_settings_from_the_train_tab_fields():
    settings = training_settings(2, 1e-3, "adamw", 0.3, "all", 4, 2, 0)
    assert (settings.epochs, settings.margin, settings.n_labels, settings.image_size) == (2, 0.3, 4, None)
    assert training_settings(1, 1e-3, "adamw", 0.2, "all", 2, 2, 64).image_size == 64
    soft = training_settings(1, 1e-3, "adamw", 0.2, "all", 2, 2, 0, soft_margin=True)
    assert soft.margin is None  # the soft-margin loss; the margin field is ignored


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((None, 1e-3, "adamw", 0.1, "all", 4, 2, 0), "epochs must be a whole number"),
        ((0, 1e-3, "adamw", 0.1, "all", 4, 2, 0), "epochs must be between 1 and"),
        ((1, None, "adamw", 0.1, "all", 4, 2, 0), r"learning rate \(lr\) must be a finite number above 0"),
        ((1, 1e-3, "adamw", -1, "all", 4, 2, 0), r"margin \(None: soft margin\) must be 0 or more"),
        ((1, 1e-3, "adamw", None, "all", 4, 2, 0), "margin must be 0 or more .*or tick soft margin"),
        ((1, 1e-3, "lion", 0.1, "all", 4, 2, 0), "optimizer must be one of"),
        ((1, 1e-3, "adamw", 0.1, "all", 1, 2, 0), "n_labels must be between 2 and"),
        ((1, 1e-3, "adamw", 0.1, "all", 4, 2, 5), "image size must be between 32 and 1024, got 5"),
    ],
)
def test_training_settings_name_the_bad_field(fields, message):
    with pytest.raises(InputError, match=message):
        training_settings(*fields)


def test_compare_before_training_says_to_train_first(shared):
    with pytest.raises(InputError, match="train the extractor on the Train tab first"):
        shared.compare()


def test_a_result_computed_across_a_change_is_not_kept_for_the_new_state(session):
    own = session.edit()
    stale = []

    def slow_compute():
        own._invalidate()  # data or model changed while this was computing
        stale.append(object())
        return stale[-1]

    assert own._cached(("probe",), slow_compute) is stale[0]  # the caller in flight still gets its answer
    assert own._cached(("probe",), lambda: "fresh") == "fresh"  # but the new state computes its own


def test_a_cancel_pressed_while_the_run_waits_stops_it_and_only_it(shared):
    session = WorkspaceSession(shared)
    settings = TrainingSettings(epochs=1, lr=1e-3, n_labels=2, n_instances=2, image_size=TINY_IMAGE_SIZE)
    session.arm_training()  # Train clicked; the run now waits in the queue
    session.cancel()  # Cancel clicked meanwhile
    assert "No epoch finished" in list(session.train(settings))[-1].status
    assert session.latest_checkpoint is None
    # that Cancel is used up: the next run trains
    assert list(session.train(settings))[-1].status.startswith("Finished 1 epoch(s)")
    first_checkpoint = session.latest_checkpoint
    session.cancel()  # a Cancel with nothing queued or running ...
    session.arm_training()  # ... is forgotten when Train is clicked next
    assert list(session.train(settings))[-1].status.startswith("Finished 1 epoch(s)")
    assert session.latest_checkpoint.exists() and not first_checkpoint.exists()  # one checkpoint per session


def test_while_training_the_session_refuses_changes_and_closing_the_view_stops_the_run(shared):
    session = WorkspaceSession(shared)
    settings = TrainingSettings(epochs=200, lr=1e-3, n_labels=2, n_instances=2, image_size=TINY_IMAGE_SIZE)
    updates = session.train(settings)
    next(updates)  # the first epoch is done: the run is going
    assert session.training_running
    for change in (lambda: session.edit().load_data("mock"), lambda: list(session.train(settings))):
        with pytest.raises(InputError, match="Training is running"):
            change()
    updates.close()  # what Gradio does when the browser goes away
    session._training.join(timeout=60)
    assert not session.training_running
    assert len(session.workspace.training_history) < settings.epochs  # stopped early, kept the finished epochs
    session.edit()  # changes are allowed again


def test_training_reports_each_epoch_then_compare_measures_against_the_base(shared):
    session = WorkspaceSession(shared)
    settings = TrainingSettings(epochs=2, lr=1e-3, n_labels=2, n_instances=2, image_size=TINY_IMAGE_SIZE)
    updates = list(session.train(settings))
    last = updates[-1]
    assert last.history["epoch"].tolist() == [0, 1, 2]  # epoch 0: the validation before training
    assert last.history.loc[0, "val_cmc_1"] == pytest.approx(shared.evaluation().metrics_flat["OVERALL/cmc/1"])
    assert last.batches["position"].tolist() == [0.5, 1.0, 1.5, 2.0]  # 4 train labels, 2 per batch
    kept = last.history["val_cmc_1"].idxmax()  # the first best epoch
    assert last.status.startswith(f"Finished 2 epoch(s). The views are using epoch {kept} of 2 (best OVERALL/cmc/1")
    own = session.workspace
    assert f"trained here, epoch {kept} of 2 in use" in own.describe()
    checkpoint = ViTExtractor(session.latest_checkpoint).model.state_dict()  # the weights in use
    for key, value in own.extractor.model.model.state_dict().items():
        assert torch.equal(checkpoint[key], value)
    assert own.base is not None and own.base.extractor is shared.extractor
    assert shared.base is None  # the shared default never trains
    result = own.compare("OVERALL/map/5", 3, 2)
    deltas = result.deltas.set_index("metric")
    trained, base = own.evaluation().metrics_flat, shared.evaluation().metrics_flat
    expected = trained["OVERALL/map/5"] - base["OVERALL/map/5"]
    assert deltas.loc["OVERALL/map/5", "delta"] == pytest.approx(expected, abs=1e-4)  # shown to 4 decimals
    assert (result.improved["delta"] > 0).all() and (result.regressed["delta"] < 0).all()
    change = own.per_query_values("OVERALL/map/5") - shared.evaluation().per_query_values("OVERALL/map/5")
    best = np.sort(change[change > 0])[::-1][: len(result.improved)]
    assert len(result.improved) == min(3, int((change > 0).sum()))  # the largest gains, as many as asked for
    np.testing.assert_allclose(result.improved["delta"], np.round(best, 4))


@pytest.mark.parametrize(("cmc_at_1", "kept", "says_gem"), [([0.2, 0.5, 0.3], 1, True), ([0.5, 0.4, 0.3], 0, False)])
def test_the_model_line_says_when_the_weights_in_use_pool_with_gem(shared, monkeypatch, cmc_at_1, kept, says_gem):
    values = iter(cmc_at_1)  # each validation of the run, epoch 0 first
    monkeypatch.setattr(
        train_module,
        "evaluate_extractor",
        lambda *args, **kwargs: SimpleNamespace(metrics_flat={"OVERALL/cmc/1": next(values), "OVERALL/map/5": 0.1}),
    )
    session = WorkspaceSession(shared)
    settings = TrainingSettings(
        epochs=2, lr=1e-3, n_labels=2, n_instances=2, image_size=TINY_IMAGE_SIZE, fine_tune=True
    )
    list(session.train(settings))
    description = session.workspace.describe()
    assert f"trained here, epoch {kept} of 2 in use" in description
    assert ("GEM pooling" in description) is says_gem


def test_cancelling_training_stops_it_before_the_requested_epochs(shared):
    session = WorkspaceSession(shared)
    settings = TrainingSettings(epochs=30, lr=1e-3, n_labels=2, n_instances=2, image_size=TINY_IMAGE_SIZE)
    updates = session.train(settings)
    next(updates)  # the first epoch finished
    session.cancel()
    last = list(updates)[-1]
    assert len(last.history) < 30
    assert "Cancelled" in last.status


def test_training_curves_are_long_form_per_chart():
    history = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "loss": [None, 0.5, 0.4],
            "active_tri": [None, 0.9, 0.8],
            "pos_dist": [None, 1.0, 0.9],
            "neg_dist": [None, 1.1, 1.3],
            "val_cmc_1": [0.1, 0.2, 0.3],
            "val_map_5": [0.05, 0.1, None],
            "seconds": [1.0, 1.0, 1.0],
        }
    )
    batches = pd.DataFrame(
        {"epoch": [1, 1, 2, 2], "batch": [1, 2, 1, 2], "n_batches": 2, "position": [0.5, 1.0, 1.5, 2.0]}
        | {"loss": [0.6, 0.4, 0.5, 0.3], "active_tri": [1.0, 0.8, 0.9, 0.7], "pos_dist": 1.0, "neg_dist": 1.2}
    )
    curves = training_curves(history, batches)
    loss, active, distances, validation = curves.values()
    assert list(curves) == ["loss", "active triplets", "positive / negative distance", "validation cmc@1 / map@5"]
    assert loss[loss["series"] == "per batch"]["epoch"].tolist() == [0.5, 1.0, 1.5, 2.0]
    assert loss[loss["series"] == "epoch mean"]["epoch"].tolist() == [1, 2]  # no loss before training
    assert set(distances["series"]) == {"pos_dist", "neg_dist"} and len(active) == 6
    assert validation[validation["series"] == "cmc@1"]["epoch"].tolist() == [0, 1, 2]  # the baseline first
    assert validation[validation["series"] == "map@5"]["value"].tolist() == [0.05, 0.1]


def test_revert_restores_the_extractor_embeddings_and_metrics_before_training(shared):
    session = WorkspaceSession(shared)
    with pytest.raises(InputError, match="Nothing to revert"):
        session.revert_training()
    settings = TrainingSettings(epochs=1, lr=1e-2, n_labels=2, n_instances=2, image_size=TINY_IMAGE_SIZE, keep="last")
    list(session.train(settings))
    own = session.workspace
    assert not np.array_equal(own.embeddings(), shared.embeddings())  # the trained extractor is in use
    session.revert_training()
    assert own.extractor is shared.extractor and own.describe() == shared.describe()
    assert np.array_equal(own.embeddings(), shared.embeddings())  # exactly, not recomputed
    assert own.evaluation().metrics_flat == shared.evaluation().metrics_flat
    result = own.compare("OVERALL/map/5", 3, 2)  # the extractor before the run against the one in use: the same
    assert (result.deltas["delta"] == 0).all() and result.improved.empty and result.regressed.empty


def test_the_metrics_table_has_fnmr_at_fmr(shared):
    table = shared.metrics_table()
    fnmr = table[table["metric"] == "fnmr@fmr"]
    assert fnmr["k"].tolist() == ["0.001", "0.01", "0.1"]
    assert fnmr["value"].between(0, 1).all()


def test_above_the_pair_bound_fnmr_is_left_out_and_the_note_says_why(shared, monkeypatch):
    own = shared.copy()
    own._invalidate()  # evaluate again, under the lowered bound
    monkeypatch.setattr(
        workspace_module, "MAX_FNMR_PAIRS", shared.items.n_queries * len(shared.items.gallery_items) - 1
    )
    assert "fnmr@fmr" not in set(own.metrics_table()["metric"])
    assert "fnmr@fmr is left out" in own.no_relevant_gallery_text()
