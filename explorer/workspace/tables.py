"""Data frames the app shows: metrics, queries, nearest neighbours, and the training charts' series."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from explorer import const as C
from explorer.data.items import ItemIndex
from explorer.retrieval.results import RetrievalResults


def metrics_frame(flat: dict[str, float]) -> pd.DataFrame:
    """One row per (category, metric, k) of flat metric keys, with its value rounded; OVERALL first."""
    rows = []
    for key, value in flat.items():
        category, metric, k = key.split(C.METRIC_NAME_SEPARATOR)
        rows.append((category, metric, k, round(float(value), 4)))
    frame = pd.DataFrame(rows, columns=["category", "metric", "k", "value"])
    frame["overall_first"] = frame["category"] != C.OVERALL_CATEGORIES_KEY
    return (
        frame.sort_values(["overall_first", "category"], kind="stable")
        .drop(columns="overall_first")
        .reset_index(drop=True)
    )


TRAINING_CHARTS = ("loss", "active triplets", "positive / negative distance", "validation cmc@1 / map@5")


def training_curves(history: pd.DataFrame, batches: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Long-form (epoch, series, value) frames of the four training charts, keyed by `TRAINING_CHARTS`: loss and
    active triplets per batch (at their position in epochs) and per epoch (the mean), positive / negative distance
    per epoch, validation cmc@1 / map@5 per epoch with epoch 0 (before training) first."""
    names = {"val_cmc_1": "cmc@1", "val_map_5": "map@5"}

    def long(frame: pd.DataFrame, x: str, columns: list[str], series: dict[str, str]) -> pd.DataFrame:
        rows = (
            frame[[x, *columns]]
            .rename(columns={x: "epoch"})
            .melt(id_vars="epoch", value_vars=columns, var_name="series", value_name="value")
        )
        rows = rows.dropna(subset=["value"])
        return rows.assign(series=rows["series"].replace(series), value=rows["value"].astype(float))

    def per_batch_and_epoch(column: str) -> pd.DataFrame:
        return pd.concat(
            [
                long(batches, "position", [column], {column: "per batch"}),
                long(history, "epoch", [column], {column: "epoch mean"}),
            ],
            ignore_index=True,
        )

    loss, active, distance, validation = TRAINING_CHARTS
    return {
        loss: per_batch_and_epoch("loss"),
        active: per_batch_and_epoch("active_tri"),
        distance: long(history, "epoch", ["pos_dist", "neg_dist"], {}),
        validation: long(history, "epoch", ["val_cmc_1", "val_map_5"], names),
    }


def query_table(items: ItemIndex, query_ids: Sequence[int]) -> pd.DataFrame:
    """Per query id: its item id, label and file name."""
    rows = items.query_items[list(query_ids)]
    return pd.DataFrame(
        {"query id": list(query_ids), "item id": rows, "label": items.labels[rows], "file": items.file_names(rows)}
    )


def neighbours_table(retrieval: RetrievalResults, items: ItemIndex) -> pd.DataFrame:
    """The first row of a gallery search: rank, item id, label, distance and file of each retrieved item."""
    retrieved, distances, _ = retrieval.row(0)
    rows = retrieval.gallery_ids[retrieved].numpy()
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "item id": rows,
            "label": items.labels[rows],
            "distance": np.round(distances.numpy(), 4),
            "file": items.file_names(rows),
        }
    )
