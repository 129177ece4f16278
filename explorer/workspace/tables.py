"""Data frames the app shows: metrics, training history and the training charts' series."""

from __future__ import annotations

import pandas as pd

from explorer import const as C


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
