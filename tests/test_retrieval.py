"""Chunked retrieval against a naive full-matrix implementation written here, plus exclusion and tie rules."""

import numpy as np
import pytest
import torch

from explorer.retrieval import RetrievalResults, pairwise_dist, retrieve


def naive_retrieve(embeddings, labels, is_query, is_gallery, sequence, top_n):
    """Full Q x G distance matrix, exclusions as a mask, stable sort by (distance, gallery position)."""
    q_ids, g_ids = np.flatnonzero(is_query), np.flatnonzero(is_gallery)
    dist = ((embeddings[q_ids, None, :].double() - embeddings[None, g_ids, :].double()) ** 2).sum(-1).sqrt()
    seq = np.arange(len(labels)) if sequence is None else np.asarray(sequence)
    excluded = torch.from_numpy(seq[q_ids][:, None] == seq[g_ids][None, :])
    dist[excluded] = float("inf")
    same = torch.from_numpy(labels[q_ids][:, None] == labels[g_ids][None, :]) & ~excluded
    rows = []
    for i in range(len(q_ids)):
        order = np.lexsort((np.arange(len(g_ids)), dist[i].numpy()))
        order = [j for j in order if np.isfinite(dist[i, j])][:top_n]
        rows.append((order, dist[i, order].numpy(), same[i, order].numpy(), int(same[i].sum())))
    return rows


def assert_matches_naive(result: RetrievalResults, expected):
    assert len(result) == len(expected)
    for i, (ids, dists, flags, n_gt) in enumerate(expected):
        got_ids, got_d, got_flags = result.row(i)
        assert got_ids.tolist() == list(ids), f"query {i}"
        np.testing.assert_allclose(got_d.numpy(), dists, rtol=1e-5, atol=1e-5)
        assert got_flags.tolist() == list(flags)
        assert int(result.n_gt[i]) == n_gt


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_random_one_vs_rest_matches_naive_full_matrix(seed, chunk_size):
    g = torch.Generator().manual_seed(seed)
    n = 60
    emb = torch.randn(n, 6, generator=g)
    labels = torch.randint(0, 5, (n,), generator=g).numpy()
    flags = np.ones(n, dtype=bool)
    result = retrieve(emb, labels, flags, flags, top_n=12, chunk_size=chunk_size)
    assert_matches_naive(result, naive_retrieve(emb, labels, flags, flags, None, 12))


@pytest.mark.parametrize("seed", [3, 4])
def test_random_separate_query_gallery_with_sequences_matches_naive(seed):
    g = torch.Generator().manual_seed(seed)
    n = 80
    emb = torch.randn(n, 5, generator=g)
    labels = torch.randint(0, 4, (n,), generator=g).numpy()
    is_query = torch.rand(n, generator=g).numpy() < 0.4
    is_gallery = ~is_query | (torch.rand(n, generator=g).numpy() < 0.3)  # some items are both
    sequence = torch.randint(0, 10, (n,), generator=g).numpy()
    result = retrieve(emb, labels, is_query, is_gallery, sequence=sequence, top_n=15, chunk_size=9)
    assert_matches_naive(result, naive_retrieve(emb, labels, is_query, is_gallery, sequence, 15))


def test_ties_are_broken_by_gallery_position_even_beyond_the_candidate_margin():
    # 40 identical gallery items and one query: all distances tie, so the top 5 must be positions 0..4
    # (topk alone may return any 5 of the 40; the exact fallback must restore the order).
    emb = torch.zeros(41, 3)
    emb[0] = torch.tensor([1.0, 2.0, 2.0])  # the query, at distance 3 from every gallery item
    is_query = np.array([True] + [False] * 40)
    result = retrieve(emb, np.zeros(41, dtype=int), is_query, ~is_query, top_n=5)
    ids, dists, _ = result.row(0)
    assert ids.tolist() == [0, 1, 2, 3, 4]
    assert dists.tolist() == [3.0] * 5


def test_item_is_never_retrieved_for_itself_and_is_not_its_own_ground_truth():
    emb = torch.tensor([[0.0], [1.0], [5.0]])
    labels = np.array([7, 7, 8])
    flags = np.ones(3, dtype=bool)
    result = retrieve(emb, labels, flags, flags, top_n=3)
    # query 0 (x=0): gallery 1 at 1, gallery 2 at 5; itself (gallery 0) excluded; its one GT is item 1
    assert result.row(0)[0].tolist() == [1, 2]
    assert result.n_gt.tolist() == [1, 1, 0]
    assert result.n_retrieved.tolist() == [2, 2, 2]


def test_gallery_items_of_the_query_sequence_are_ignored():
    emb = torch.tensor([[0.0], [0.1], [0.2], [3.0]])
    labels = np.array([1, 1, 1, 1])
    sequence = np.array(["s", "s", "t", "u"])
    flags = np.ones(4, dtype=bool)
    result = retrieve(emb, labels, flags, flags, sequence=sequence, top_n=4)
    # item 0 shares sequence "s" with item 1: only items 2 (0.2) and 3 (3.0) remain, both relevant
    assert result.row(0)[0].tolist() == [2, 3]
    assert result.n_gt[0] == 2
    # item 2 is alone in "t": it sees 1 (0.1), 0 (0.2), 3 (2.8)
    assert result.row(2)[0].tolist() == [1, 0, 3]


def test_missing_sequence_values_are_their_own_sequence():
    emb = torch.tensor([[0.0], [0.1], [0.2]])
    flags = np.ones(3, dtype=bool)
    result = retrieve(emb, [0, 0, 0], flags, flags, sequence=[float("nan"), float("nan"), 1.0], top_n=3)
    assert result.row(0)[0].tolist() == [1, 2]


def test_one_query_and_one_gallery_item():
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    result = retrieve(emb, [1, 1], [True, False], [False, True], top_n=10)
    ids, dists, flags = result.row(0)
    assert ids.tolist() == [0] and dists.tolist() == [5.0] and flags.tolist() == [True]
    assert result.top_n == 1  # clipped to the gallery size


def test_query_whose_only_gallery_item_is_itself_gets_an_empty_list():
    emb = torch.tensor([[0.0], [1.0]])
    result = retrieve(emb, [0, 1], [True, True], [True, False], top_n=3)
    assert result.n_retrieved.tolist() == [0, 1]
    assert result.retrieved[0].tolist() == [-1]


def test_results_round_trip_through_a_dict():
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(10, 3, generator=g)
    result = retrieve(emb, [0, 1] * 5, [True] * 10, [True] * 10, top_n=20)
    restored = RetrievalResults.from_dict(result.to_dict())
    for name in ("retrieved", "distances", "is_relevant", "n_gt", "n_retrieved", "query_ids"):
        assert torch.equal(getattr(restored, name), getattr(result, name))


def test_take_keeps_requested_rows_in_order():
    emb = torch.arange(6, dtype=torch.float32)[:, None]
    result = retrieve(emb, [0, 0, 1, 1, 2, 2], [True] * 6, [True] * 6, top_n=2)
    subset = result.take([4, 1])
    assert subset.query_ids.tolist() == [4, 1]
    assert torch.equal(subset.retrieved, result.retrieved[[4, 1]])


def test_bad_inputs_get_specific_messages():
    emb = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="at least one query"):
        retrieve(emb, [0, 1, 2], [False] * 3, [True] * 3)
    with pytest.raises(ValueError, match="labels has 2 values"):
        retrieve(emb, [0, 1], [True] * 3, [True] * 3)
    with pytest.raises(ValueError, match="top_n"):
        retrieve(emb, [0, 1, 2], [True] * 3, [True] * 3, top_n=0)


def test_pairwise_dist_matches_the_definition():
    x1 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x2 = torch.tensor([[3.0, 4.0], [1.0, 1.0], [0.0, 1.0]])
    expected = torch.tensor([[5.0, 2**0.5, 1.0], [(4 + 9) ** 0.5, 0.0, 1.0]])
    torch.testing.assert_close(pairwise_dist(x1, x2), expected)


def test_pairwise_dist_is_accurate_far_from_the_origin():
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(40, 16, generator=g) * 0.05 + 1000.0
    x2 = torch.randn(30, 16, generator=g) * 0.05 + 1000.0
    exact = torch.cdist(x1.double(), x2.double(), compute_mode="donot_use_mm_for_euclid_dist")
    got = pairwise_dist(x1, x2)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), exact, rtol=1e-6, atol=1e-6)
    assert pairwise_dist(torch.tensor([[0, 1]]), torch.tensor([[3, 5]])).tolist() == [[5.0]]  # ints
    torch.testing.assert_close(pairwise_dist(x1, x2, p=1), torch.cdist(x1, x2, p=1))


def test_pairwise_dist_memory_scales_with_the_result_not_with_the_dimension():
    from torch.profiler import ProfilerActivity, profile

    x1, x2 = torch.randn(64, 32), torch.randn(4096, 32)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        pairwise_dist(x1, x2)
    largest = max(event.self_cpu_memory_usage for event in prof.events())
    # one float64 copy of the [64, 4096] result or of x2 at most; a [rows, 4096, 32] difference block is 16x more
    assert largest <= 8 * max(64 * 4096, 4096 * 32)


def test_collapsed_and_duplicate_embeddings_keep_exact_ties_without_scanning_per_query(monkeypatch):
    import explorer.retrieval.search as search

    exact_pairs = []
    for name in ("squared_distances_to", "squared_distances_between"):
        original = getattr(search, name)

        def counting(*args, original=original):
            out = original(*args)
            exact_pairs.append(out.numel())
            return out

        monkeypatch.setattr(search, name, counting)
    n, top_n = 300, 5
    labels = np.arange(n) % 7
    flags = np.ones(n, dtype=bool)
    collapsed = retrieve(torch.zeros(n, 16), labels, flags, flags, top_n=top_n)
    # every distance is 0: ties go to the lowest gallery positions, the query itself excluded
    for q in range(n):
        ids, dists, _ = collapsed.row(q)
        assert ids.tolist() == [g for g in range(top_n + 1) if g != q][:top_n]
        assert dists.tolist() == [0.0] * top_n
    # exact distances: the screened candidates plus one per distinct gallery vector, not the whole gallery per row
    assert sum(exact_pairs) <= n * (top_n + search.EXTRA_CANDIDATES + 1)
    g = torch.Generator().manual_seed(0)
    clusters = torch.randn(10, 16, generator=g)[torch.randint(0, 10, (n,), generator=g)]
    result = retrieve(clusters, labels, flags, flags, top_n=top_n, chunk_size=64)
    assert_matches_naive(result, naive_retrieve(clusters, labels, flags, flags, None, top_n))


def test_search_gallery_orders_by_distance_then_position_and_excludes_itself():
    from explorer.retrieval.search import search_gallery

    gallery = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]], dtype=np.float32)
    # query at the origin: gallery 0 is itself (excluded); 1 and 2 tie at distance 1 -> lower position first
    result = search_gallery(np.zeros(2, np.float32), gallery, 3, gallery_ids=np.array([10, 11, 12, 13]), exclude=[0])
    retrieved, distances, relevant = result.row(0)
    assert retrieved.tolist() == [1, 2, 3]
    assert result.gallery_ids[retrieved].tolist() == [11, 12, 13]
    assert distances.tolist() == pytest.approx([1.0, 1.0, 3.0])
    assert not relevant.any()  # no labels given: the query's label is unknown


def test_search_gallery_marks_relevance_from_labels():
    from explorer.retrieval.search import search_gallery

    gallery = np.array([[1.0, 0.0], [2.0, 0.0], [4.0, 0.0]], dtype=np.float32)
    result = search_gallery(np.zeros((1, 2), np.float32), gallery, 3, labels=(["b"], ["a", "b", "b"]))
    assert result.row(0)[2].tolist() == [False, True, True]
    assert int(result.n_gt[0]) == 2


def test_knn_graph_matches_brute_force_with_each_item_first():
    from explorer.retrieval.search import knn_graph

    embeddings = np.random.default_rng(4).normal(size=(60, 5)).astype(np.float32)
    embeddings[7] = embeddings[3]  # a duplicate: distance 0, still after the item itself
    graph = knn_graph(embeddings, 6)
    brute = np.linalg.norm(embeddings[:, None].astype(np.float64) - embeddings[None], axis=2)
    np.fill_diagonal(brute, -1)  # itself first
    expected = np.argsort(brute, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(graph.indices, expected)
    np.testing.assert_allclose(graph.distances, np.take_along_axis(brute.clip(0), expected, 1), atol=1e-5)
    assert graph.indices.shape == (60, 6) and graph.distances.dtype == np.float32
    assert knn_graph(embeddings[:3], 6).indices.shape == (3, 3)


def test_large_searches_go_to_the_gpu_when_present_and_the_device_does_not_change_results(monkeypatch):
    from explorer.retrieval import search

    embeddings = torch.randn(40, 6)
    labels, flags = torch.arange(40) % 4, torch.ones(40, dtype=torch.bool)
    inputs = search.prepare_inputs(embeddings, labels, flags, flags)
    assert search.search_device(inputs).type == "cpu"  # this machine has no GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert search.search_device(inputs).type == "cpu"  # too small to repay the copies
    monkeypatch.setattr(search, "CUDA_MIN_WORK", 40 * 40 * 6)
    assert search.search_device(inputs).type == "cuda"
    used, real = [], search.iter_score_chunks

    def on_cpu_instead(inputs, chunk_size=None, dtype=None, device="cpu"):
        used.append(torch.device(device).type)
        return real(inputs, chunk_size, dtype, device="cpu")

    monkeypatch.setattr(search, "iter_score_chunks", on_cpu_instead)
    chosen = search.retrieve_prepared(inputs, 5, chunk_size=7)
    explicit = search.retrieve_prepared(inputs, 5, chunk_size=7, device="cpu")
    assert used == ["cuda", "cpu"]
    for name in ("retrieved", "distances", "is_relevant"):
        torch.testing.assert_close(getattr(chosen, name), getattr(explicit, name))
