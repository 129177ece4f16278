"""2-D projections: PCA maths, caching, tiny inputs, the plotly figure and the export table."""

import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from explorer.const import LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN
from explorer.retrieval.search import KnnGraph, knn_graph
from explorer.viz import projection
from explorer.viz.projection import (
    UMAP_MIN_ITEMS,
    WEBGL_MIN_POINTS,
    calc_pca_projection,
    compute_projection,
    projection_figure,
    projection_frame,
    save_projection,
)


@pytest.fixture(autouse=True)
def empty_memory_cache():
    projection.clear_memory_cache()
    yield
    projection.clear_memory_cache()


def _count_calls(monkeypatch, name: str) -> list:
    """Replace projection.<name> by a wrapper that records each call and returns the real result."""
    calls = []
    real = getattr(projection, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(projection, name, counting)
    return calls


def _fake_umap(monkeypatch) -> list:
    """Stand-in for UMAP (keeps numba out of these tests): records calls, returns the first two columns."""
    calls = []

    def fake(embeddings, seed=0, progress=None, knn=None):
        calls.append(seed)
        return embeddings[:, :2].astype(np.float32)

    monkeypatch.setattr(projection, "calc_umap_projection", fake)
    return calls


def _hover(trace) -> list[str]:
    """Each point's hover text as plotly.js renders the trace's template (the fields the template names)."""
    fields = {
        "%{customdata}": lambda i: str(trace.customdata[i]),
        "%{text}": lambda i: str(trace.text[i]),
        "%{fullData.name}": lambda i: trace.name,
        "%{hovertext}": lambda i: str(trace.hovertext[i]),
        "%{marker.color:.3f}": lambda i: f"{trace.marker.color[i]:.3f}",
    }
    texts = []
    for i in range(len(trace.customdata)):
        text = trace.hovertemplate.removesuffix("<extra></extra>")
        for field, value in fields.items():
            text = text.replace(field, value(i)) if field in text else text
        assert "%{" not in text
        texts.append(text)
    return texts


def _figure_inputs(n_items: int) -> dict:
    rng = np.random.default_rng(0)
    return {
        "coords": rng.normal(size=(n_items, 2)),
        "item_ids": list(range(100, 100 + n_items)),
        "labels": [i % 3 for i in range(n_items)],
        "paths": [f"class_{i % 3}/img_{i}.jpg" for i in range(n_items)],
    }


def test_pca_recovers_the_dominant_direction_with_a_fixed_sign():
    along = np.linspace(-5, 5, 40)
    noise = np.random.default_rng(0).normal(scale=0.01, size=(40, 2))
    embeddings = np.column_stack([along, np.zeros(40), np.zeros(40)]) + np.column_stack([noise, np.zeros(40)])
    coords = calc_pca_projection(embeddings)
    # the loading of the first component is (≈1, 0, 0): positive, so coordinate 0 is +along
    np.testing.assert_allclose(coords[:, 0], along - along.mean(), atol=0.05)
    assert np.abs(coords[:, 1]).max() < 0.1


def test_pca_is_deterministic_and_orders_components_by_variance():
    rng = np.random.default_rng(1)
    embeddings = (rng.normal(size=(300, 64)) * np.linspace(5, 0.1, 64)).astype(np.float32)
    first, second = calc_pca_projection(embeddings), calc_pca_projection(embeddings.copy())
    np.testing.assert_array_equal(first, second)
    assert first.shape == (300, 2) and first.dtype == np.float32
    assert first[:, 0].var() >= first[:, 1].var() > 0


@pytest.fixture(params=["scatter", "svd"])
def pca_route(request, monkeypatch):
    """PCA by the D x D scatter matrix (embeddings up to PCA_SCATTER_MAX_DIM wide) or by an SVD (wider ones)."""
    if request.param == "svd":
        monkeypatch.setattr(projection, "PCA_SCATTER_MAX_DIM", 0)
    return request.param


def test_pca_matches_the_full_svd_up_to_sign(pca_route):
    embeddings = np.random.default_rng(2).normal(size=(50, 20)) * np.arange(20, 0, -1)
    centered = embeddings - embeddings.mean(axis=0)
    left, singular, _ = np.linalg.svd(centered, full_matrices=False)
    np.testing.assert_allclose(np.abs(calc_pca_projection(embeddings)), np.abs(left[:, :2] * singular[:2]), rtol=1e-4)


@pytest.mark.parametrize("shape", [(1, 8), (2, 8), (3, 8), (10, 1)])
def test_pca_of_degenerate_shapes_pads_missing_components_with_zeros(shape, pca_route):
    embeddings = np.random.default_rng(3).normal(size=shape)
    coords = calc_pca_projection(embeddings)
    assert coords.shape == (shape[0], 2)
    assert np.isfinite(coords).all()
    if shape[0] == 1:
        np.testing.assert_array_equal(coords, np.zeros((1, 2)))
    if shape[1] == 1:
        np.testing.assert_array_equal(coords[:, 1], 0)


def test_pca_of_identical_embeddings_puts_every_point_at_the_origin():
    np.testing.assert_array_equal(calc_pca_projection(np.ones((10, 8))), np.zeros((10, 2)))


def test_cache_hit_returns_identical_coords_without_recomputing(tmp_path, monkeypatch):
    calls = _count_calls(monkeypatch, "calc_pca_projection")
    embeddings = np.random.default_rng(4).normal(size=(30, 8)).astype(np.float32)
    first = compute_projection(embeddings, "pca", cache_dir=tmp_path)
    from_memory = compute_projection(embeddings, "pca", cache_dir=tmp_path)
    projection.clear_memory_cache()
    from_disk = compute_projection(embeddings, "pca", cache_dir=tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, from_memory)
    np.testing.assert_array_equal(first, from_disk)
    assert len(list(tmp_path.glob("projection_*.npy"))) == 1


def test_cache_is_keyed_by_embeddings_method_and_seed(tmp_path, monkeypatch):
    umap_seeds = _fake_umap(monkeypatch)
    pca_calls = _count_calls(monkeypatch, "calc_pca_projection")
    embeddings = np.random.default_rng(5).normal(size=(20, 4)).astype(np.float32)
    changed = embeddings.copy()
    changed[0, 0] += 1e-3
    compute_projection(embeddings, "umap", seed=0, cache_dir=tmp_path)
    compute_projection(embeddings, "umap", seed=0, cache_dir=tmp_path)
    compute_projection(embeddings, "umap", seed=1, cache_dir=tmp_path)
    compute_projection(changed, "umap", seed=0, cache_dir=tmp_path)
    compute_projection(embeddings, "pca", cache_dir=tmp_path)
    assert umap_seeds == [0, 1, 0]
    assert len(pca_calls) == 1


def test_returned_coords_cannot_corrupt_the_cache(monkeypatch):
    embeddings = np.random.default_rng(6).normal(size=(10, 4))
    first = compute_projection(embeddings, "pca")
    first[:] = 0
    assert np.abs(compute_projection(embeddings, "pca")).sum() > 0


def test_corrupt_disk_cache_is_recomputed(tmp_path, monkeypatch):
    calls = _count_calls(monkeypatch, "calc_pca_projection")
    embeddings = np.random.default_rng(7).normal(size=(10, 4))
    expected = compute_projection(embeddings, "pca", cache_dir=tmp_path)
    projection.clear_memory_cache()
    (cached_file,) = tmp_path.glob("projection_*.npy")
    cached_file.write_bytes(b"not an npy file")
    np.testing.assert_array_equal(compute_projection(embeddings, "pca", cache_dir=tmp_path), expected)
    assert len(calls) == 2


def test_progress_reports_start_and_end(monkeypatch):
    _fake_umap(monkeypatch)
    reports = []
    compute_projection(np.ones((10, 3)) * np.arange(10)[:, None], "umap", progress=lambda f, m: reports.append((f, m)))
    assert reports[0][0] == 0.0 and reports[-1] == (1.0, "UMAP: done")


def test_umap_on_too_few_items_falls_back_to_pca_and_says_so(monkeypatch):
    umap_calls = _fake_umap(monkeypatch)
    embeddings = np.random.default_rng(8).normal(size=(UMAP_MIN_ITEMS - 1, 5))
    messages = []
    with pytest.warns(UserWarning, match="showing PCA instead"):
        coords = compute_projection(embeddings, "umap", progress=lambda f, m: messages.append(m))
    assert umap_calls == []
    np.testing.assert_array_equal(coords, calc_pca_projection(embeddings))
    assert any(f"at least {UMAP_MIN_ITEMS}" in message for message in messages)


@pytest.mark.parametrize(
    ("embeddings", "method", "match"),
    [
        (np.zeros((0, 4)), "pca", "no embeddings"),
        (np.zeros(4), "pca", r"2-D array \[N, D\]"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "pca", r"NaN or infinity \(first ids: \[0\]\)"),
        (np.zeros((5, 4)), "tsne", "Unknown projection method 'tsne'"),
    ],
)
def test_bad_input_raises_a_specific_message(embeddings, method, match):
    with pytest.raises(ValueError, match=match):
        compute_projection(embeddings, method)


def test_figure_points_carry_their_item_ids_and_hover_text():
    inputs = _figure_inputs(12)
    figure = projection_figure(**inputs, color_values=inputs["labels"], color_name=LABELS_COLUMN)
    position_of_id = {item_id: i for i, item_id in enumerate(inputs["item_ids"])}
    seen = []
    for trace in figure.data:
        for x, y, item_id, text in zip(trace.x, trace.y, trace.customdata, _hover(trace), strict=True):
            i = position_of_id[item_id]
            assert (x, y) == tuple(inputs["coords"][i])
            assert text == f"label: {inputs['labels'][i]}<br>id: {item_id}<br>file: {inputs['paths'][i]}"
            seen.append(item_id)
    assert sorted(seen) == inputs["item_ids"]


def test_figure_uses_webgl_only_for_large_sets():
    for n_items, trace_type in ((WEBGL_MIN_POINTS, go.Scatter), (WEBGL_MIN_POINTS + 1, go.Scattergl)):
        inputs = _figure_inputs(n_items)
        figure = projection_figure(**inputs, color_values=inputs["labels"], color_name=LABELS_COLUMN)
        assert {type(trace) for trace in figure.data} == {trace_type}


def test_categorical_colours_give_one_legend_entry_per_category_and_grey_for_missing():
    inputs = _figure_inputs(6)
    hits = [True, False, True, None, None, False]
    figure = projection_figure(**inputs, color_values=hits, color_name="hit@1")
    assert [trace.name for trace in figure.data] == ["True", "False", "n/a"]
    assert [list(trace.customdata) for trace in figure.data] == [[100, 102], [101, 105], [103, 104]]
    assert figure.data[2].marker.color == projection.MISSING_VALUE_COLOR
    assert _hover(figure.data[0])[0] == "label: 0<br>id: 100<br>file: class_0/img_0.jpg<br>hit@1: True"
    assert _hover(figure.data[2])[1] == "label: 1<br>id: 104<br>file: class_1/img_4.jpg<br>hit@1: n/a"


def test_continuous_colours_use_a_colour_scale():
    inputs = _figure_inputs(5)
    figure = projection_figure(**inputs, color_values=[0.0, 0.5, 1.0, 0.25, np.nan], color_name="map@5")
    scaled, missing = figure.data
    assert scaled.marker.showscale and list(scaled.marker.color) == [0.0, 0.5, 1.0, 0.25]
    assert list(missing.customdata) == [104]
    assert _hover(scaled)[1] == "label: 1<br>id: 101<br>file: class_1/img_1.jpg<br>map@5: 0.500"
    assert _hover(missing) == ["label: 1<br>id: 104<br>file: class_1/img_4.jpg<br>map@5: n/a"]


def test_many_categories_keep_the_most_frequent_in_the_legend_and_the_rest_share_other():
    inputs = _figure_inputs(100)
    values = [0] * 20 + list(range(1, 81))  # label 0 is the most frequent: it keeps its own entry
    figure = projection_figure(**inputs, color_values=values, color_name=LABELS_COLUMN)
    assert len(figure.data) == projection.MAX_LEGEND_CATEGORIES
    assert figure.data[0].name == "0" and len(figure.data[0].x) == 20
    other = figure.data[-1]
    assert other.name == f"{81 - (projection.MAX_LEGEND_CATEGORIES - 1)} other categories"
    assert sum(len(trace.x) for trace in figure.data) == 100
    assert len(set(other.marker.color)) > 1  # the shared entry keeps each label's own colour
    i = int(other.customdata[0]) - 100  # its labels are the inputs' (i % 3), not the colour values: per point
    assert _hover(other)[0] == f"label: {i % 3}<br>id: {i + 100}<br>file: class_{i % 3}/img_{i}.jpg"


def test_points_of_one_label_get_their_label_from_the_trace_name_not_per_point():
    inputs = _figure_inputs(WEBGL_MIN_POINTS + 1)
    labels = [f"label {i % 3}" for i in range(WEBGL_MIN_POINTS + 1)]
    figure = projection_figure(**{**inputs, "labels": labels}, color_values=labels, color_name=LABELS_COLUMN)
    assert all(trace.hovertext is None for trace in figure.data)  # one label per trace: no per-point labels
    assert all(list(trace.text) == [inputs["paths"][i - 100] for i in trace.customdata] for trace in figure.data)
    assert _hover(figure.data[0])[0] == "label: label 0<br>id: 100<br>file: class_0/img_0.jpg"


def test_fixed_colours_focus_and_thumbnail_token():
    inputs = _figure_inputs(4)
    figure = projection_figure(
        **inputs,
        color_values=["hit", "miss", "hit", "miss"],
        color_name="hit@1",
        color_map={"hit": "green", "miss": "red"},
        focus=np.array([True, True, True, False]),
        thumbnails="token",
    )
    faint, hit, miss = figure.data
    assert faint.name == projection.FAINT_NAME and list(faint.customdata) == [103]
    assert _hover(faint) == ["label: 0<br>id: 103<br>file: class_0/img_3.jpg<br>hit@1: miss"]
    assert (hit.marker.color, miss.marker.color) == ("green", "red")
    assert figure.layout.meta == {"thumbnails": "token"}


def test_a_continuous_colouring_is_titled_once_by_its_colour_bar():
    inputs = _figure_inputs(3)
    figure = projection_figure(**inputs, color_values=[0.1, 0.5, np.nan], color_name="map@5")
    assert figure.layout.legend.title.text is None
    assert figure.data[0].marker.colorbar.title.text == "map@5"


@pytest.mark.parametrize("n_items", [6, WEBGL_MIN_POINTS + 1])
def test_figures_built_without_per_point_validation_are_valid_plotly(n_items):
    """The traces skip plotly's per-element checks (seconds at 100k points): what they hold must still pass them."""
    inputs = _figure_inputs(n_items)
    rng = np.random.default_rng(0)
    focus = np.arange(n_items) % 2 == 0
    for values, name in ((list(range(n_items)), LABELS_COLUMN), (rng.random(n_items).tolist(), "map@5")):
        figure = projection_figure(**inputs, color_values=values, color_name=name, focus=focus, thumbnails="t")
        checked = go.Figure(figure.to_plotly_json())  # validates every property and value; raises on a bad one
        assert len(checked.data) == len(figure.data)


def test_figure_rejects_mismatched_lengths():
    inputs = _figure_inputs(4)
    with pytest.raises(ValueError, match="paths has 3 entries but there are 4 points"):
        projection_figure(**{**inputs, "paths": inputs["paths"][:3]}, color_values=[1] * 4, color_name="label")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_projection_export_round_trips(tmp_path, suffix):
    df = pd.DataFrame(
        {LABELS_COLUMN: [1, 2, 2], PATHS_COLUMN: ["a.jpg", "b.jpg", "c.jpg"], SPLIT_COLUMN: ["train"] * 3}
    )
    coords = np.array([[0.5, -1.0], [2.0, 3.0], [4.0, 5.0]], dtype=np.float32)
    frame = projection_frame(coords, df, "pca")
    path = save_projection(frame, tmp_path / f"coords{suffix}")
    read = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(read.columns) == ["id", LABELS_COLUMN, PATHS_COLUMN, SPLIT_COLUMN, "x", "y", "method"]
    assert read["id"].tolist() == [0, 1, 2] and read["method"].tolist() == ["pca"] * 3
    np.testing.assert_allclose(read[["x", "y"]].to_numpy(), coords)


def test_projection_export_rejects_unknown_format(tmp_path):
    frame = projection_frame(np.zeros((1, 2)), pd.DataFrame({LABELS_COLUMN: [0]}), "umap")
    with pytest.raises(ValueError, match="use a .csv or .parquet"):
        save_projection(frame, tmp_path / "coords.xlsx")


def test_distance_matrix_given_to_umap_is_euclidean():
    embeddings = np.random.default_rng(10).normal(size=(30, 7))
    expected = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    np.testing.assert_allclose(projection._euclidean_distance_matrix(embeddings), expected, atol=1e-4)


def test_real_umap_separates_clusters_and_reports_epoch_progress():
    """The one test that runs umap-learn (numba compiles on first use, ~10-20 s per process)."""
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(3), 40)
    embeddings = (rng.normal(size=(3, 16))[labels] * 10 + rng.normal(size=(120, 16))).astype(np.float32)
    fractions = []
    started = time.perf_counter()
    coords = compute_projection(embeddings, "umap", progress=lambda fraction, message: fractions.append(fraction))
    print(f"UMAP on 120 points (including numba compilation): {time.perf_counter() - started:.1f} s")
    assert coords.shape == (120, 2) and np.isfinite(coords).all()
    nearest = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.fill_diagonal(nearest, np.inf)
    assert (labels[nearest.argmin(axis=1)] == labels).mean() > 0.95
    assert len(fractions) > 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    np.testing.assert_array_equal(projection.calc_umap_projection(embeddings), coords)  # seeded: deterministic


def test_knn_graph_is_part_of_the_umap_cache_key(monkeypatch):
    calls = _fake_umap(monkeypatch)
    embeddings = np.random.default_rng(3).normal(size=(20, 4)).astype(np.float32)
    graph = knn_graph(embeddings, 5)
    compute_projection(embeddings, "umap")
    compute_projection(embeddings, "umap", knn=graph)
    compute_projection(embeddings, "umap", knn=graph)
    compute_projection(embeddings, "umap", knn=knn_graph(embeddings, 6))
    assert len(calls) == 3


def test_umap_refuses_a_knn_graph_of_the_wrong_shape():
    embeddings = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="needs 10 rows of at least 9 neighbours"):
        projection.calc_umap_projection(embeddings, knn=knn_graph(embeddings[:8], 9))
    with pytest.raises(ValueError, match="same \\[N, k\\] shape"):
        projection.calc_umap_projection(embeddings, knn=KnnGraph(np.zeros((10, 9)), np.zeros((10, 8))))


def test_real_umap_from_the_exact_knn_graph_returns_separated_coordinates():
    """umap-learn on our exact kNN graph (no pynndescent); numba's compilation is cached on disk."""
    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(3), 40)
    embeddings = (rng.normal(size=(3, 16))[labels] * 10 + rng.normal(size=(120, 16))).astype(np.float32)
    coords = compute_projection(embeddings, "umap", knn=knn_graph(embeddings, projection.UMAP_N_NEIGHBORS))
    assert coords.shape == (120, 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    nearest = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.fill_diagonal(nearest, np.inf)
    assert (labels[nearest.argmin(axis=1)] == labels).mean() > 0.95


def test_umap_with_the_exact_knn_builds_the_graph_only_when_not_cached(tmp_path, monkeypatch):
    import explorer.viz.projection as projection

    calls = []
    real_knn_graph = projection.knn_graph
    monkeypatch.setattr(projection, "knn_graph", lambda e, k: calls.append(k) or real_knn_graph(e, k))
    embeddings = np.random.default_rng(3).normal(size=(80, 6)).astype(np.float32)
    first = projection.compute_projection(embeddings, "umap", cache_dir=tmp_path, exact_knn=True)
    projection._memory_cache.clear()  # from the disk cache, as a later process would
    again = projection.compute_projection(embeddings, "umap", cache_dir=tmp_path, exact_knn=True)
    assert first.shape == (80, 2) and np.array_equal(first, again)
    assert calls == [projection.UMAP_N_NEIGHBORS]  # the second call read the cache: no search


def test_umap_asks_for_the_large_data_epoch_count_from_five_thousand_items(monkeypatch):
    """umap-learn would run 500 layout epochs up to 10,000 items (9 s at 10k); from 5,000 items we ask for 200."""
    import umap

    asked = []

    class RecordingUMAP:
        def __init__(self, **kwargs):
            asked.append(kwargs["n_epochs"])

        def fit_transform(self, data):
            return np.zeros((len(data), 2))

    monkeypatch.setattr(umap, "UMAP", RecordingUMAP)
    for n_items in (100, projection.UMAP_FEW_EPOCHS_FROM - 1, projection.UMAP_FEW_EPOCHS_FROM, 10_000):
        projection.calc_umap_projection(np.zeros((n_items, 3), np.float32))
    assert asked == [500, 500, 200, 200]
