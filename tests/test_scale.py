"""Optional FAISS search against the exact one: the same result format, high recall, exclusions kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.retrieval.search import search_gallery

faiss = pytest.importorskip("faiss")

from explorer.retrieval.approximate import approximate_search, recall_at_k  # noqa: E402


@pytest.fixture(scope="module")
def clustered():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, 3000)
    embeddings = (rng.normal(size=(20, 16))[labels] + 0.5 * rng.normal(size=(3000, 16))).astype(np.float32)
    return embeddings, labels


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_search_finds_most_of_the_exact_top_k_and_never_the_item_itself(clustered, kind):
    embeddings, labels = clustered
    options = {"labels": (labels, labels), "exclude": np.arange(len(embeddings))}
    exact = search_gallery(embeddings, embeddings, 10, **options)
    approx = approximate_search(embeddings, embeddings, 10, kind=kind, **options)
    assert approx.retrieved.shape == exact.retrieved.shape == (3000, 10)
    assert recall_at_k(approx, exact) > 0.9
    assert not (approx.retrieved == torch.arange(3000)[:, None]).any()
    assert (approx.distances[:, 1:] >= approx.distances[:, :-1]).all()
    torch.testing.assert_close(approx.n_gt, exact.n_gt)
    gallery_labels = torch.from_numpy(labels)[approx.retrieved]
    assert torch.equal(approx.is_relevant, gallery_labels == torch.from_numpy(labels)[:, None])
    hits = approx.retrieved == exact.retrieved
    torch.testing.assert_close(approx.distances[hits], exact.distances[hits], atol=1e-4, rtol=1e-4)


def test_recall_is_one_for_the_exact_search_and_counts_missed_items(clustered):
    embeddings, _ = clustered
    exact = search_gallery(embeddings[:50], embeddings, 4)
    assert recall_at_k(exact, exact) == 1.0
    shifted = exact.take(list(range(1, 50)) + [0])
    assert recall_at_k(shifted, exact) < 0.2
    small = approximate_search(embeddings[:3], embeddings[:3], 10, kind="ivf")
    assert (
        small.retrieved.shape == (3, 3)
        and recall_at_k(small, search_gallery(embeddings[:3], embeddings[:3], 10)) == 1.0
    )
