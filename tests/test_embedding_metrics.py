"""`EmbeddingMetrics`: the seed's validation cells, batches in any order, lazy metrics and clear errors."""

import matplotlib.pyplot as plt
import pytest
import torch
from PIL import Image

from explorer.metrics import EmbeddingMetrics, evaluate_arrays


def make_items(n=12, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "embeddings": torch.randn(n, dim, generator=g),
        "labels": torch.arange(n) % 3,
        "is_query": torch.ones(n, dtype=torch.bool),
        "is_gallery": torch.ones(n, dtype=torch.bool),
    }


def batches(items, order, size):
    for start in range(0, len(order), size):
        rows = order[start : start + size]
        batch = {k: v[rows] for k, v in items.items()}
        batch["idx"] = torch.tensor(rows)
        yield batch


def test_batches_in_any_order_give_the_same_metrics_as_one_call():
    items = make_items()
    expected = evaluate_arrays(
        items["embeddings"],
        items["labels"],
        items["is_query"],
        items["is_gallery"],
        cmc_top_k=(1, 5),
        precision_top_k=(5,),
        map_top_k=(5,),
    ).metrics
    calculator = EmbeddingMetrics(cmc_top_k=(1, 5), verbose=False)
    calculator.setup(num_samples=12)
    for batch in batches(items, [5, 0, 11, 3, 7, 1, 2, 10, 4, 9, 8, 6], size=5):
        calculator.update_data(batch)
    assert calculator.metrics == expected  # computed lazily on first access
    assert calculator.compute_metrics() == expected


def test_without_idx_rows_are_placed_in_arrival_order_and_indices_argument_wins():
    items = make_items()
    sequential = EmbeddingMetrics(verbose=False)
    sequential.setup(12)
    for start in (0, 6):
        sequential.update_data({k: v[start : start + 6] for k, v in items.items()})
    explicit = EmbeddingMetrics(verbose=False)
    explicit.setup(12)
    order = [3, 1, 0, 2, 11, 10, 9, 8, 7, 6, 5, 4]
    explicit.update_data({k: v[order] for k, v in items.items()}, indices=order)
    assert sequential.metrics == explicit.metrics


def test_unreduced_metrics_are_per_query():
    calculator = EmbeddingMetrics(verbose=False)
    calculator.setup(12)
    calculator.update_data(make_items())
    assert calculator.metrics_unreduced["OVERALL"]["cmc"][5].shape == (12,)


def test_missing_samples_raise_a_clear_error():
    calculator = EmbeddingMetrics(verbose=False)
    calculator.setup(12)
    calculator.update_data({k: v[:5] for k, v in make_items().items()})
    with pytest.raises(RuntimeError, match="collected 5 of 12"):
        _ = calculator.metrics


def test_missing_batch_key_names_the_key():
    calculator = EmbeddingMetrics(verbose=False)
    calculator.setup(2)
    with pytest.raises(KeyError, match="embeddings"):
        calculator.update_data({"labels": torch.tensor([0, 1])})


def test_plots_need_paths_in_extra_keys():
    calculator = EmbeddingMetrics(verbose=False)
    calculator.setup(12)
    calculator.update_data(make_items())
    with pytest.raises(ValueError, match="extra_keys"):
        calculator.get_plot_for_queries([0], n_instances=2)


def test_categories_and_sequences_keys():
    items = make_items()
    items["category"] = ["a", "b"] * 6
    items["sequence"] = torch.arange(12) // 2
    calculator = EmbeddingMetrics(categories_key="category", sequence_key="sequence", verbose=False)
    calculator.setup(12)
    calculator.update_data(items)
    expected = evaluate_arrays(
        items["embeddings"],
        items["labels"],
        items["is_query"],
        items["is_gallery"],
        categories=items["category"],
        sequence=items["sequence"],
        cmc_top_k=(5,),
        precision_top_k=(5,),
        map_top_k=(5,),
    )
    assert set(calculator.metrics) == {"OVERALL", "a", "b"}
    assert calculator.metrics == expected.metrics


def test_seed_validation_cells_run(tmp_path):
    """The seed's Validation section with its imports changed and a tiny stand-in model."""
    from explorer.data import DatasetQueryGallery, generate_shapes_dataset

    df = generate_shapes_dataset(tmp_path, n_classes=4, images_per_class=3, image_size=32, seed=0)
    df_val = df[df["split"] == "validation"].reset_index(drop=True)
    val_dataset = DatasetQueryGallery(df_val, dataset_root=tmp_path)
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten()).eval()
    val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=4)

    calculator = EmbeddingMetrics(
        extra_keys=[
            "paths",
        ]
    )
    calculator.setup(num_samples=len(val_dataset))
    with torch.no_grad():
        for batch in val_loader:
            batch["embeddings"] = model(batch["input_tensors"])
            calculator.update_data(batch)
    print(calculator.metrics)
    print(calculator.metrics_unreduced)
    figure = calculator.get_plot_for_queries(query_ids=[2, 1], n_instances=5, verbose=False)
    assert figure in [plt.figure(n) for n in plt.get_fignums()]  # plt.show() would display it
    plt.show()
    worst = calculator.get_plot_for_worst_queries(metric_name="OVERALL/map/5", n_queries=2, n_instances=5)
    assert len([ax for ax in worst.axes if ax.images]) >= 2 * 6  # 2 rows: query + 5 results (+ GT)
    calculator.get_plot_for_queries(query_ids=[0, 1, 2, 3], n_instances=8, verbose=True)  # deeper than top_n=5
    plt.close("all")


def test_bbox_keys_in_batches_crop_the_pictures(tmp_path):
    left_red = Image.new("RGB", (40, 20), (0, 0, 255))
    left_red.paste((255, 0, 0), (0, 0, 20, 20))
    path = tmp_path / "two_halves.png"
    left_red.save(path)
    items = make_items(n=2)
    items["paths"] = [str(path), str(path)]
    items.update(
        {
            "x_1": torch.tensor([0, -1]),
            "y_1": torch.tensor([0, -1]),
            "x_2": torch.tensor([20, -1]),
            "y_2": torch.tensor([20, -1]),
        }
    )
    calculator = EmbeddingMetrics(extra_keys=("paths",), verbose=False, pcf_variance=())
    calculator.setup(2)
    calculator.update_data(items)
    assert calculator._bboxes() == [(0, 0, 20, 20), None]
    figure = calculator.get_plot_for_queries([0], n_instances=1)
    query_pixels = figure.axes[0].images[0].get_array()
    centre = query_pixels[query_pixels.shape[0] // 2, query_pixels.shape[1] // 2]
    assert tuple(centre[:3]) == (255, 0, 0)  # the crop holds only the red half
    plt.close("all")


def test_int_categories_stay_int_keys_and_flat_keys_are_their_text():
    items = make_items(n=4)
    items["category"] = torch.tensor([7, 7, 8, 8])
    calculator = EmbeddingMetrics(categories_key="category", verbose=False, cmc_top_k=(1,))
    calculator.setup(4)
    calculator.update_data(items)
    assert list(calculator.metrics) == ["OVERALL", 7, 8]
    assert len(calculator.get_worst_queries_ids("8/cmc/1", 5)) == 2  # queries 2 and 3 form category 8
    assert set(calculator.get_worst_queries_ids("8/cmc/1", 5)) == {2, 3}


def test_fnmr_without_non_matching_pairs_is_nan_with_a_note_and_the_rest_is_computed(capsys):
    items = make_items(n=4)
    items["labels"] = torch.zeros(4, dtype=torch.long)  # one label: every pair matches
    calculator = EmbeddingMetrics(cmc_top_k=(1,), fmr_vals=(0.1,), verbose=True)
    calculator.setup(4)
    calculator.update_data(items)
    metrics = calculator.compute_metrics()
    assert metrics["OVERALL"]["fnmr@fmr"][0.1] != metrics["OVERALL"]["fnmr@fmr"][0.1]  # NaN
    assert metrics["OVERALL"]["cmc"][1] == 1.0
    assert "fnmr@fmr is NaN" in capsys.readouterr().out
