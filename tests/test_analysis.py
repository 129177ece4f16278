"""Dataset analysis: label confusions counted by hand on a tiny retrieval, and suspected label errors found first
on clustered embeddings with flipped labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from explorer import const as C
from explorer.analysis import label_confusions, suspected_label_errors
from explorer.analysis.confusions import TABLE_COLUMNS
from explorer.metrics.evaluation import evaluate_arrays

# Five validation items on a line, every one query and gallery. Top 2 of each (ties go to the lower position):
#   0 (x=0,    label 10): 1 (10, right), 4 (30, wrong)
#   1 (x=1,    label 10): 4 (30), 2 (20)
#   2 (x=1.5,  label 20): 4 (30), 1 (10)
#   3 (x=3,    label 20): 2 (20, right), 4 (30)
#   4 (x=1.25, label 30): 1 (10), 2 (20)  (both at 0.25: position 1 first)
POSITIONS = [0.0, 1.0, 1.5, 3.0, 1.25]
LABELS = np.array([10, 10, 20, 20, 30])


def _evaluation(top_n: int = 2):
    embeddings = np.array([[x, 0.0] for x in POSITIONS], dtype=np.float32)
    flags = np.ones(len(LABELS), bool)
    return evaluate_arrays(
        embeddings,
        LABELS,
        flags,
        flags,
        cmc_top_k=(1,),
        precision_top_k=(1,),
        map_top_k=(1,),
        pcf_variance=(),
        top_n=top_n,
    )


def test_confusions_count_wrong_hits_of_the_top_k_by_hand():
    confusions = label_confusions(_evaluation(), LABELS, top_k=2)
    assert list(confusions.table.columns) == list(TABLE_COLUMNS) == ["query label", "retrieved label", "count", "share"]
    assert confusions.pairs == [(10, 30), (20, 30), (10, 20), (20, 10), (30, 10), (30, 20)]
    assert confusions.table["query label"].tolist() == ["10", "20", "10", "20", "30", "30"]
    assert confusions.table["count"].tolist() == [2, 2, 1, 1, 1, 1]
    assert np.allclose(confusions.table["share"], [2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 2, 1 / 2])
    assert confusions.query_ids == [[0, 1], [2, 3], [1], [2], [4], [4]]
    # involvement (as query + as retrieved): 30 -> 2 + 4 = 6, 10 -> 3 + 2 = 5, 20 -> 3 + 2 = 5
    assert confusions.matrix_labels == [30, 10, 20]
    assert confusions.matrix.tolist() == [[0, 1, 1], [2, 0, 1], [2, 1, 0]]


def test_confusions_show_names_search_deeper_and_serialise():
    names = {10: "gull", 20: "tern", 30: "skua"}
    deeper = label_confusions(_evaluation(top_n=1), LABELS, label_names=names, top_k=2, matrix_size=2)
    assert deeper.table["query label"].tolist() == ["gull", "tern", "gull", "tern", "skua", "skua"]
    assert deeper.table["retrieved label"].tolist()[:2] == ["skua", "skua"]
    assert deeper.matrix_names == ["skua", "gull"] and deeper.matrix.tolist() == [[0, 1], [2, 0]]
    per_position = label_confusions(_evaluation(), LABELS, label_names=[names[x] for x in LABELS], top_k=2)
    pd.testing.assert_frame_equal(per_position.table, deeper.table)
    data = json.loads(json.dumps(deeper.to_dict()))
    assert data["table"][0] == {"query label": "gull", "retrieved label": "skua", "count": 2, "share": 2 / 3}
    assert data["pairs"][0] == [10, 30] and data["query_ids"][0] == [0, 1] and data["top_k"] == 2


def test_confusions_top_1_and_no_confusion():
    top_1 = label_confusions(_evaluation(), LABELS, top_k=1)
    assert top_1.pairs == [(10, 30), (20, 30), (30, 10)] and top_1.table["share"].tolist() == [1.0, 1.0, 1.0]
    assert top_1.query_ids == [[1], [2], [4]]
    clean = np.array([[0.0, 0], [0.1, 0], [5, 0], [5.1, 0]], dtype=np.float32)
    flags = np.ones(4, bool)
    perfect = evaluate_arrays(clean, [0, 0, 1, 1], flags, flags, cmc_top_k=(1,), pcf_variance=())
    empty = label_confusions(perfect, [0, 0, 1, 1], top_k=1)
    assert empty.table.empty and list(empty.table.columns) == list(TABLE_COLUMNS)
    assert empty.matrix.shape == (0, 0) and empty.to_dict()["table"] == []
    with pytest.raises(ValueError, match="validation positions"):
        label_confusions(perfect, [0, 0], top_k=1)


def _clustered(n_classes: int = 6, per_class: int = 30, n_flipped: int = 6, seed: int = 0):
    """Well separated Gaussian clusters; `n_flipped` items get another class's label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (n_classes, 16))
    true_labels = np.repeat(np.arange(n_classes), per_class)
    embeddings = (centres[true_labels] + rng.normal(0, 0.5, (len(true_labels), 16))).astype(np.float32)
    flipped = rng.choice(len(true_labels), n_flipped, replace=False)
    labels = true_labels.copy()
    labels[flipped] = (true_labels[flipped] + rng.integers(1, n_classes, n_flipped)) % n_classes
    df = pd.DataFrame(
        {
            C.LABELS_COLUMN: labels,
            C.PATHS_COLUMN: [f"class{label}/{i}.jpg" for i, label in enumerate(true_labels)],
            C.LABEL_NAMES_COLUMN: [f"species {label}" for label in labels],
        }
    )
    return embeddings, df, flipped, true_labels


def test_flipped_labels_rank_first_with_their_true_label_suggested():
    embeddings, df, flipped, true_labels = _clustered()
    seen = []
    table = suspected_label_errors(embeddings, df, k=10, progress=lambda f, m: seen.append(f))
    assert list(table.columns) == [
        "item id",
        "path",
        "given label",
        "suggested label",
        "score",
        "neighbours with suggested label",
        "given label name",
        "suggested label name",
    ]
    top = table.head(len(flipped))
    assert set(top["item id"]) == set(flipped.tolist())
    assert top["suggested label"].tolist() == true_labels[top["item id"]].tolist()
    assert (top["score"] > 0).all() and (table["score"].iloc[len(flipped) :] < 0).all()
    assert (top["neighbours with suggested label"] >= 8).all()
    assert top["path"].tolist() == df["path"].iloc[top["item id"]].tolist()
    assert top["suggested label name"].tolist() == [f"species {label}" for label in top["suggested label"]]
    assert table["score"].is_monotonic_decreasing and len(table) == len(df) and seen[-1] == 1.0
    assert table["score"].between(-1, 1).all() and (table["suggested label"] != table["given label"]).all()


def test_label_errors_of_a_subset_search_only_that_subset_and_export():
    embeddings, df, flipped, _ = _clustered()
    subset = np.arange(0, len(df), 2)
    table = suspected_label_errors(embeddings, df.drop(columns=[C.LABEL_NAMES_COLUMN]), k=0, item_ids=subset)
    assert sorted(table["item id"]) == subset.tolist() and "given label name" not in table.columns
    in_subset = set(flipped.tolist()) & set(subset.tolist())
    assert set(table["item id"].head(len(in_subset))) == in_subset
    lines = table.to_csv(index=False).splitlines()
    assert lines[0] == "item id,path,given label,suggested label,score" and len(lines) == len(subset) + 1


def test_label_errors_by_hand_singletons_last_and_bad_input():
    embeddings = np.array([[0.0], [0.1], [5.0], [5.1], [9.0]], dtype=np.float32)
    table = suspected_label_errors(embeddings, [0, 0, 1, 1, 2], k=1)
    # item 0: own mean (without it) at 0.1, nearest other mean at 5.05: (0.1 - 5.05) / (0.1 + 5.05)
    first = table.set_index("item id").loc[0]
    assert first["score"] == pytest.approx((0.1 - 5.05) / 5.15, rel=1e-5) and first["suggested label"] == 1
    assert table["item id"].iloc[-1] == 4 and np.isnan(table["score"].iloc[-1])  # alone in its label: no score
    assert table["path"].tolist() == [""] * 5 and table["neighbours with suggested label"].tolist()[0] == 0
    with pytest.raises(ValueError, match="one row per item"):
        suspected_label_errors(embeddings[:3], [0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="at least 2 labels"):
        suspected_label_errors(embeddings, [0] * 5)
    with pytest.raises(ValueError, match="k must be"):
        suspected_label_errors(embeddings, [0, 0, 1, 1, 2], k=-1)
