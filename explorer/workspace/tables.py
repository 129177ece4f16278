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


def training_curves(history: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-form (epoch, series, value) frames of the four training charts: loss, active triplets,
    positive/negative distance, validation cmc@1/map@5."""
    names = {"val_cmc_1": "cmc@1", "val_map_5": "map@5"}

    def long(columns: list[str]) -> pd.DataFrame:
        frame = history.melt(id_vars="epoch", value_vars=columns, var_name="series", value_name="value").dropna()
        return frame.assign(series=frame["series"].replace(names), value=frame["value"].astype(float))

    return long(["loss"]), long(["active_tri"]), long(["pos_dist", "neg_dist"]), long(["val_cmc_1", "val_map_5"])


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
