"""How well suspected-label-error scores find deliberately flipped labels on real photos (not a test).

birds50 (50 CUB species, 2,949 photos) embedded by the offline pretrained default extractor; a share of the items
(seeded) gets another, random species' label; each scoring rule ranks all items, and we report precision@n_flipped
(of the top n_flipped items, how many were flipped) and ROC-AUC, averaged over seeds, for several k.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_label_errors.py [--data /work/shared/data/birds50] [--seeds 3]

The first run embeds the photos (~1-2 minutes, then cached on disk).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer import const as C  # noqa: E402
from explorer.analysis.label_errors import (  # noqa: E402
    class_mean_contrast,
    nearest_other_items,
    suspected_label_errors,
)
from explorer.workspace import Workspace  # noqa: E402

# A rule maps (labels [N], neighbour positions [N, k], neighbour distances [N, k], embeddings) to a score [N].
Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def label_shares(labels: np.ndarray, neighbours: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted vote share of every label per item [N, C] (dense: fine for a bench) and each item's label code."""
    classes, codes = np.unique(labels, return_inverse=True)
    shares = np.zeros((len(labels), len(classes)))
    rows = np.repeat(np.arange(len(labels)), neighbours.shape[1])
    np.add.at(shares, (rows, codes[neighbours].ravel()), (weights / weights.sum(1, keepdims=True)).ravel())
    return shares, codes


def radius_weights(distances: np.ndarray) -> np.ndarray:
    """exp(-(d / d_k)^2): weights fall with distance, scaled by the item's own neighbourhood radius d_k."""
    return np.exp(-((distances / np.maximum(distances[:, -1:], 1e-12)) ** 2))


def vote_margin(weights: Callable[[np.ndarray], np.ndarray], calibrated: bool = False) -> Rule:
    """Share of the strongest other label minus own share; `calibrated` divides every label's shares by that
    label's mean own share first (confident learning's per-class thresholds)."""

    def rule(labels, neighbours, distances, _embeddings):
        shares, codes = label_shares(labels, neighbours, weights(distances))
        rows = np.arange(len(labels))
        if calibrated:
            shares = shares / np.maximum(np.bincount(codes, shares[rows, codes]) / np.bincount(codes), 1e-6)
        own = shares[rows, codes].copy()
        shares[rows, codes] = -np.inf
        return shares.max(1) - own

    return rule


def own_share(labels, neighbours, distances, _embeddings):
    shares, codes = label_shares(labels, neighbours, radius_weights(distances))
    return -shares[np.arange(len(labels)), codes]


def class_mean_difference(labels, _neighbours, _distances, embeddings):
    """d_own - d_other in embedding units: the library's rule without the division, computed densely here."""
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sums = np.zeros((len(classes), embeddings.shape[1]))
    np.add.at(sums, codes, embeddings)
    means = sums / counts[:, None]
    own_mean = (sums[codes] - embeddings) / np.maximum(counts[codes] - 1, 1)[:, None]
    squared = (embeddings**2).sum(1)[:, None] - 2 * embeddings @ means.T + (means**2).sum(1)[None]
    squared[np.arange(len(labels)), codes] = np.inf
    return np.linalg.norm(embeddings - own_mean, axis=1) - np.sqrt(np.maximum(squared.min(1), 0))


def library_rule(labels, _neighbours, _distances, embeddings):
    return class_mean_contrast(embeddings, labels)[0]


RULES: dict[str, Rule] = {
    "vote margin, radius-weighted": vote_margin(radius_weights),
    "vote margin, uniform": vote_margin(np.ones_like),
    "vote margin, 1/rank": vote_margin(lambda d: np.broadcast_to(1.0 / np.arange(1, d.shape[1] + 1), d.shape)),
    "vote margin, calibrated": vote_margin(radius_weights, calibrated=True),
    "-own vote share, radius-weighted": own_share,
    "class-mean difference (no k)": class_mean_difference,
    "class-mean contrast (no k; library)": library_rule,
}


def flip(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with `fraction` of the items (seeded) moved to another, random label; and the flipped mask."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen = rng.choice(len(labels), round(fraction * len(labels)), replace=False)
    noisy = labels.copy()
    for item in chosen:
        noisy[item] = rng.choice(classes[classes != labels[item]])
    mask = np.zeros(len(labels), bool)
    mask[chosen] = True
    return noisy, mask


def precision_at_n(score: np.ndarray, flipped: np.ndarray) -> float:
    top = np.argsort(-score, kind="stable")[: int(flipped.sum())]
    return float(flipped[top].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/birds50")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.03, 0.10])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20, 30, 50])
    args = parser.parse_args()
    start = time.perf_counter()
    workspace = Workspace.build(args.data)
    embeddings = workspace.embeddings().astype(np.float64)
    labels = workspace.dataset.df[C.LABELS_COLUMN].to_numpy()
    print(f"{len(labels)} items, {len(np.unique(labels))} labels, embedded in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    neighbours, distances = nearest_other_items(embeddings.astype(np.float32), max(args.k))
    print(f"nearest {max(args.k)} neighbours of every item in {time.perf_counter() - start:.1f} s\n")
    rows = []
    for fraction in args.fractions:
        for seed in range(args.seeds):
            noisy, flipped = flip(labels, fraction, seed)
            for name, rule in RULES.items():
                for k in args.k if "no k" not in name else [0]:
                    score = rule(noisy, neighbours[:, :k], distances[:, :k], embeddings)
                    auc = roc_auc_score(flipped, score)
                    rows.append((fraction, name, k, seed, precision_at_n(score, flipped), auc))
    table = pd.DataFrame(rows, columns=["flipped", "rule", "k", "seed", "precision@n_flipped", "ROC-AUC"])
    summary = table.groupby(["flipped", "rule", "k"], sort=False)[["precision@n_flipped", "ROC-AUC"]].mean()
    print(summary.round(3).to_string())
    noisy, flipped = flip(labels, args.fractions[0], 0)
    start = time.perf_counter()
    ranked = suspected_label_errors(embeddings, workspace.dataset.df.assign(**{C.LABELS_COLUMN: noisy}))
    seconds = time.perf_counter() - start
    top = ranked.head(int(flipped.sum()))
    caught = top[flipped[top["item id"]]]
    right = (caught["suggested label"].to_numpy() == labels[caught["item id"]]).mean()
    print(
        f"\nsuspected_label_errors (defaults), {args.fractions[0]:.0%} flipped, seed 0: precision@n_flipped "
        f"{len(caught) / len(top):.3f}, true label suggested for {right:.1%} of those, {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
