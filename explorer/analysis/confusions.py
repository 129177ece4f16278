"""Which labels are retrieved for which: the wrong hits among every query's first k results, per label pair.

A pair (query label A, retrieved label B) counts once for every item of label B among the first k results of a
query of label A; correct retrievals (same label) are left out, so the counts say where retrieval goes wrong.
The result holds the table a UI shows, the queries behind every row (a click opens them) and a square count
matrix of the most confused labels (a heat map). It reads an `EvaluationResult` only, searching deeper just when
its lists are shorter than k.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from explorer.metrics.evaluation import EvaluationResult
from explorer.progress import Progress, report
from explorer.retrieval.results import NO_ITEM, RetrievalResults

QUERY_LABEL, RETRIEVED_LABEL, COUNT, SHARE = "query label", "retrieved label", "count", "share"
TABLE_COLUMNS = (QUERY_LABEL, RETRIEVED_LABEL, COUNT, SHARE)
DEFAULT_TOP_K = 5
DEFAULT_MATRIX_SIZE = 10

LabelNames = Sequence[str] | np.ndarray | Mapping[Any, str]


@dataclass
class LabelConfusions:
    """Label pairs confused among the first `top_k` results, most frequent first.

    `table` has exactly the columns `TABLE_COLUMNS`; its labels are shown by name (the number as text where the
    dataset names none). `share` = count / all wrong retrievals of that query label, so a query label's shares
    sum to 1. `pairs[i]` and `query_ids[i]` belong to table row i: the label numbers and the query ids (rows of
    the evaluation's retrieval results, ascending) whose top k hold that confusion.
    """

    top_k: int
    table: pd.DataFrame
    pairs: list[tuple[Any, Any]]
    query_ids: list[list[int]]
    matrix_labels: list[Any]  # labels of the heat map, most confused first
    matrix_names: list[str]
    matrix: np.ndarray  # [n, n] int: how often query label i retrieves label j among the top k; diagonal 0

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and numbers (JSON-ready)."""
        rows = [
            {QUERY_LABEL: str(query), RETRIEVED_LABEL: str(retrieved), COUNT: int(count), SHARE: float(share)}
            for query, retrieved, count, share in self.table.itertuples(index=False)
        ]
        return {
            "top_k": self.top_k,
            "table": rows,
            "pairs": [[_plain(a), _plain(b)] for a, b in self.pairs],
            "query_ids": self.query_ids,
            "matrix_labels": [_plain(label) for label in self.matrix_labels],
            "matrix_names": self.matrix_names,
            "matrix": self.matrix.tolist(),
        }


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (JSON cannot write numpy types)."""
    return value.item() if isinstance(value, np.generic) else value


def names_by_label(labels: np.ndarray, label_names: LabelNames | None) -> dict[Any, str]:
    """label -> name from names per position (aligned with `labels`) or a mapping; the number as text if none."""
    if label_names is None:
        named: Mapping[Any, str] = {}
    elif isinstance(label_names, Mapping):
        named = label_names
    else:
        if len(label_names) != len(labels):
            raise ValueError(
                f"label_names has {len(label_names)} values but there are {len(labels)} labels; give one name per "
                "validation position (or a label -> name mapping)."
            )
        named = dict(zip(labels.tolist(), (str(name) for name in label_names), strict=True))
    return {label: str(named.get(label, label)) for label in np.unique(labels).tolist()}


def label_confusions(
    evaluation: EvaluationResult,
    labels: Sequence[Any] | np.ndarray,
    label_names: LabelNames | None = None,
    top_k: int = DEFAULT_TOP_K,
    matrix_size: int = DEFAULT_MATRIX_SIZE,
    progress: Progress | None = None,
) -> LabelConfusions:
    """Count which labels are retrieved for which among every query's first `top_k` results.

    `labels` (and `label_names`, or a label -> name mapping) are per validation position, the numbering of the
    retrieval results' `query_ids` / `gallery_ids`: the results themselves hold label codes only. Ties in count
    go to the lower (query label, retrieved label). The heat map covers the `matrix_size` labels most involved
    in confusions (as query or as retrieved label).
    """
    if top_k < 1 or matrix_size < 1:
        raise ValueError(f"top_k and matrix_size must be positive, got top_k={top_k}, matrix_size={matrix_size}.")
    labels = np.asarray(labels)
    retrieval = evaluation.retrieval
    n_positions = int(np.concatenate([retrieval.query_ids.numpy(), retrieval.gallery_ids.numpy()]).max()) + 1
    if len(labels) < n_positions:
        raise ValueError(
            f"labels has {len(labels)} values but the retrieval results index {n_positions} validation positions; "
            "give the label of every validation item, in validation order."
        )
    report(progress, 0.0, f"counting confusions among the top {top_k}")
    if retrieval.top_n < top_k:
        retrieval = evaluation.retrieval_for_queries(range(evaluation.n_queries), top_k)
        report(progress, 0.8, f"searched {top_k} results per query")
    pairs = _confused_pairs(retrieval, labels, top_k)
    names = names_by_label(labels, label_names)
    table = pd.DataFrame(
        {
            QUERY_LABEL: pairs["query"].map(names).astype(str).to_numpy(),
            RETRIEVED_LABEL: pairs["retrieved"].map(names).astype(str).to_numpy(),
            COUNT: pairs[COUNT].to_numpy(np.int64),
            SHARE: pairs[SHARE].to_numpy(np.float64),
        },
        columns=list(TABLE_COLUMNS),
    )
    matrix_labels, matrix = _heat_map(pairs, matrix_size)
    report(progress, 1.0, f"{len(table)} confused label pairs")
    return LabelConfusions(
        top_k=top_k,
        table=table,
        pairs=[(_plain(a), _plain(b)) for a, b in zip(pairs["query"], pairs["retrieved"], strict=True)],
        query_ids=[[int(row) for row in queries] for queries in pairs["queries"]],
        matrix_labels=matrix_labels,
        matrix_names=[names[label] for label in matrix_labels],
        matrix=matrix,
    )


def _confused_pairs(retrieval: RetrievalResults, labels: np.ndarray, top_k: int) -> pd.DataFrame:
    """One row per (query label, retrieved label) among the wrong hits of the first `top_k` results: `count`,
    `share` and `queries` (the retrieval rows concerned, ascending), sorted by count desc, then labels."""
    retrieved = retrieval.retrieved[:, :top_k].numpy()
    query_labels = labels[retrieval.query_ids.numpy()]
    retrieved_labels = labels[retrieval.gallery_ids.numpy()[np.maximum(retrieved, 0)]]
    rows, columns = np.nonzero((retrieved != NO_ITEM) & (retrieved_labels != query_labels[:, None]))
    hits = pd.DataFrame({"query": query_labels[rows], "retrieved": retrieved_labels[rows, columns], "row": rows})
    grouped = hits.groupby(["query", "retrieved"], sort=True)
    pairs = grouped.size().rename(COUNT).reset_index()
    pairs["queries"] = list(grouped["row"].unique()) if len(hits) else []  # rows are ascending already
    pairs[SHARE] = pairs[COUNT] / pairs.groupby("query")[COUNT].transform("sum")
    return pairs.sort_values([COUNT, "query", "retrieved"], ascending=[False, True, True], kind="stable")


def _heat_map(pairs: pd.DataFrame, size: int) -> tuple[list[Any], np.ndarray]:
    """The `size` labels with the most wrong retrievals (as query plus as retrieved label; ties by label) and
    their square count matrix, rows = query label, columns = retrieved label."""
    involvement = pairs.groupby("query")[COUNT].sum().add(pairs.groupby("retrieved")[COUNT].sum(), fill_value=0)
    ranked = involvement.reset_index().set_axis(["label", "total"], axis=1)
    chosen = ranked.sort_values(["total", "label"], ascending=[False, True], kind="stable")["label"][:size].tolist()
    position = pd.Series(np.arange(len(chosen)), index=chosen)
    inside = pairs[pairs["query"].isin(chosen) & pairs["retrieved"].isin(chosen)]
    matrix = np.zeros((len(chosen), len(chosen)), dtype=np.int64)
    matrix[position[inside["query"]].to_numpy(), position[inside["retrieved"]].to_numpy()] = inside[COUNT]
    return [_plain(label) for label in chosen], matrix
