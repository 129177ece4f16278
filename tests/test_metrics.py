"""Hand-computed cases for every metric and edge case, and a randomised check against naive definitions."""

import math

import numpy as np
import pytest
import torch

from explorer.metrics import (
    calc_cmc,
    calc_fnmr_at_fmr,
    calc_fnmr_at_fmr_streaming,
    calc_map,
    calc_pcf,
    calc_precision,
    count_queries_without_gt,
    evaluate_arrays,
    flatten_metrics,
    reduce_metrics,
    select_worst,
)
from explorer.retrieval import prepare_inputs

B = torch.tensor


def test_cmc_hand_computed():
    flags = B([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.bool)
    out = calc_cmc(flags, B([2, 1, 3]), None, (1, 2))
    # row 0 hits at rank 1; row 1 at rank 2; row 2 never
    assert out[1].tolist() == [1, 0, 0]
    assert out[2].tolist() == [1, 1, 0]


def test_precision_divides_by_min_of_n_gt_and_k():
    flags = B([[1, 1, 1, 0, 0], [0, 1, 0, 1, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)
    out = calc_precision(flags, B([3, 4, 1]), None, (1, 2, 4, 5))
    # row 0 (n_gt 3): 1/1, 2/2, 3/min(3,4)=1, 3/3 = 1
    assert out[1][0] == 1 and out[2][0] == 1 and out[4][0] == 1 and out[5][0] == 1
    # row 1 (n_gt 4): 0/1, 1/2, 2/4, 2/4
    assert [out[k][1].item() for k in (1, 2, 4, 5)] == [0, 0.5, 0.5, 0.5]
    # row 2 (n_gt 1): 0/1, then 1/min(1,2) = 1 from k=2 on
    assert [out[k][2].item() for k in (1, 2, 4, 5)] == [0, 1, 1, 1]


def test_map_divides_by_hits_among_first_k_not_by_n_gt():
    flags = B([[0, 1, 0, 1], [1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    out = calc_map(flags, B([5, 2, 1, 2]), None, (1, 2, 3, 4))
    # row 0: hits at 2 (1/2) and 4 (2/4): map@1 = 0 (no hit), @2 = (1/2)/1, @4 = (1/2 + 2/4)/2 = 0.5
    assert [out[k][0].item() for k in (1, 2, 4)] == [0, 0.5, 0.5]
    # row 1: hits at 1 (1/1) and 3 (2/3): map@3 = (1 + 2/3)/2 = 5/6
    assert out[3][1].item() == pytest.approx(5 / 6)
    # row 2: one hit at 1 -> 1 at every k (n_gt irrelevant); row 3: no hits -> 0
    assert [out[k][2].item() for k in (1, 4)] == [1, 1]
    assert out[4][3].item() == 0


def test_k_beyond_the_list_is_clipped_but_keeps_the_requested_key():
    flags = B([[1, 0]], dtype=torch.bool)
    n_gt = B([3])
    # k' = min(5, 2) = 2: precision = 1 / min(3, 2) = 0.5; cmc = 1; map = (1/1)/1 = 1
    assert calc_precision(flags, n_gt, None, (5,)) == {5: pytest.approx(B([0.5]).double())}
    assert calc_cmc(flags, n_gt, None, (5,))[5].tolist() == [1]
    assert calc_map(flags, n_gt, None, (5,))[5].tolist() == [1]


def test_padding_beyond_n_retrieved_never_counts():
    # row 0 has 1 real item then padding; row 1 has 3 real items
    flags = B([[0, 1, 1], [0, 0, 1]], dtype=torch.bool)
    n_retrieved = B([1, 3])
    n_gt = B([2, 1])
    # row 0: k' = 1, no hit -> cmc 0, precision 0/min(2,1) = 0, map 0
    assert calc_cmc(flags, n_gt, n_retrieved, (3,))[3].tolist() == [0, 1]
    assert calc_precision(flags, n_gt, n_retrieved, (3,))[3].tolist() == [0, 1]
    assert calc_map(flags, n_gt, n_retrieved, (3,))[3].tolist() == pytest.approx([0, 1 / 3])


def test_empty_list_with_no_ground_truth_scores_one_and_with_ground_truth_zero():
    flags = torch.zeros(2, 0, dtype=torch.bool)
    n_gt, n_retrieved = B([0, 2]), B([0, 0])
    for function in (calc_cmc, calc_precision, calc_map):
        assert function(flags, n_gt, n_retrieved, (1, 5))[5].tolist() == [1, 0]


def test_non_empty_list_without_ground_truth_zero_cmc_map_and_undefined_precision():
    flags = B([[0, 0], [1, 0]], dtype=torch.bool)
    n_gt = B([0, 1])
    assert calc_cmc(flags, n_gt, None, (2,))[2].tolist() == [0, 1]
    assert calc_map(flags, n_gt, None, (2,))[2].tolist() == [0, 1]
    precision = calc_precision(flags, n_gt, None, (2,))[2]
    assert math.isnan(precision[0]) and precision[1] == 1
    # the mean skips the undefined query instead of becoming NaN, and the count says how many were skipped
    assert reduce_metrics({"precision": {2: precision}}) == {"precision": {2: 1.0}}
    assert count_queries_without_gt(n_gt, B([2, 2])) == 1


def test_pcf_on_eye_matches_the_oml_example():
    assert calc_pcf(torch.eye(4, 10), (0.5, 1.0)) == {0.5: pytest.approx(0.2), 1.0: pytest.approx(0.5)}


def test_pcf_hand_computed_two_dimensions():
    # centred points with variances 8/3 (x) and 2/3 (y): ratios 0.8, 0.2, cumulative 0.8, 1.0
    x = B([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    # v=0.5: no cumulative ratio <= 0.5 -> n = 1 -> 1/2; v=0.8: one -> n = 2 -> 1; v=1.0: two -> 3/2
    assert calc_pcf(x, (0.5, 0.8, 1.0)) == {0.5: 0.5, 0.8: 1.0, 1.0: 1.5}


@pytest.mark.parametrize("n_items, dim", [(30, 12), (12, 30)])
def test_pcf_matches_an_svd_of_the_centred_items_with_more_or_fewer_items_than_dimensions(n_items, dim):
    # fewer items than dimensions takes the N x N Gram matrix, more takes the D x D scatter: both must give
    # the squared singular values of the centred N x D matrix
    x = torch.randn(n_items, dim, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x[:, 0] *= 5  # a dominant direction, so several thresholds fall between components
    squared = torch.linalg.svdvals(x - x.mean(0)) ** 2
    cumulative = torch.cumsum(squared, 0) / squared.sum()
    variances = (0.2, 0.5, 0.9, 0.99)
    expected = {v: (1 + int((cumulative <= v).sum())) / dim for v in variances}
    assert calc_pcf(x, variances) == expected


def test_pcf_without_variance_counts_no_component_so_is_one_over_dim():
    # no variance: no cumulative ratio to count, n = 1 + 0 -> pcf = 1 / D = 1 / 4 for every v
    assert calc_pcf(torch.ones(3, 4), (0.5, 1.0)) == {0.5: 0.25, 1.0: 0.25}
    assert calc_pcf(torch.full((5, 3), 0.1), (0.5,)) == {0.5: pytest.approx(1 / 3)}  # float noise is no variance
    assert calc_pcf(torch.randn(1, 8), (0.5,)) == {0.5: 0.125}  # a single item


def test_fnmr_at_fmr_hand_computed():
    pos = np.array([0, 0, 1, 1, 2, 2, 5, 5, 9, 9])
    neg = np.array([3, 3, 4, 4, 6, 6, 7, 7, 8, 8])
    # fmr 0.1: rank 0.9 between 3 and 3 -> T = 3, pos >= 3: 5,5,9,9 -> 0.4
    # fmr 0.5: rank 4.5 between 6 and 6 -> T = 6, pos >= 6: 9,9 -> 0.2
    assert calc_fnmr_at_fmr(pos, neg, (0.1, 0.5)) == {0.1: pytest.approx(0.4), 0.5: pytest.approx(0.2)}
    # linear interpolation: neg 1,2,3,4 at 0.5 -> rank 1.5 -> T = 2.5; pos 2 and 3 -> one of two >= T
    assert calc_fnmr_at_fmr([2, 3], [1, 2, 3, 4], (0.5,)) == {0.5: 0.5}


def test_streaming_fnmr_equals_full_matrix_quantile():
    g = torch.Generator().manual_seed(0)
    n = 70
    emb = torch.randn(n, 4, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g).numpy()
    sequence = torch.randint(0, 20, (n,), generator=g).numpy()
    flags = np.ones(n, dtype=bool)
    inputs = prepare_inputs(emb, labels, flags, flags, sequence)
    dist = torch.cdist(emb.double(), emb.double(), compute_mode="donot_use_mm_for_euclid_dist").numpy()
    allowed = sequence[:, None] != sequence[None, :]
    same = labels[:, None] == labels[None, :]
    fmr_vals = (0.0, 0.013, 0.1, 0.5, 1.0)
    expected = calc_fnmr_at_fmr(dist[allowed & same], dist[allowed & ~same], fmr_vals)
    got = calc_fnmr_at_fmr_streaming(inputs, fmr_vals, chunk_size=11)
    assert got == pytest.approx(expected, abs=1e-6)


def test_fnmr_far_from_origin_matches_float64_exact_distances():
    # un-normalised features: small spread (0.05) around a large offset (1000); |q|^2 + |g|^2 - 2 q.g in float32
    # loses every digit of such distances, the definition needs them exact
    rng = np.random.default_rng(0)
    n = 300
    emb = (rng.normal(size=(n, 64)) * 0.05 + 1000.0).astype(np.float32)
    labels = rng.integers(0, 10, n)
    flags = np.ones(n, dtype=bool)
    exact = torch.from_numpy(emb).double()
    dist = torch.cdist(exact, exact, compute_mode="donot_use_mm_for_euclid_dist").numpy()
    same, not_itself = labels[:, None] == labels[None, :], ~np.eye(n, dtype=bool)
    expected = calc_fnmr_at_fmr(dist[same & not_itself], dist[~same], (0.1, 0.5))
    result = evaluate_arrays(emb, labels, flags, flags, fmr_vals=(0.1, 0.5), pcf_variance=())
    assert result.metrics["OVERALL"]["fnmr@fmr"] == pytest.approx(expected, abs=1e-9)
    assert 0.4 < expected[0.5] < 0.6  # random embeddings: about half the matching pairs beyond the median


def test_fnmr_without_matching_or_non_matching_pairs_is_nan_and_the_rest_is_computed():
    emb = B([[0.0], [1.0], [3.0]])
    flags = np.ones(3, dtype=bool)
    for labels, expected_pairs in (([0, 1, 2], (0, 6)), ([0, 0, 0], (6, 0))):
        result = evaluate_arrays(emb, labels, flags, flags, cmc_top_k=(1,), fmr_vals=(0.1,), pcf_variance=(0.5,))
        assert math.isnan(result.metrics["OVERALL"]["fnmr@fmr"][0.1])
        assert result.metrics["OVERALL"]["cmc"][1] == (0.0 if labels[1] else 1.0)
        assert result.metrics["OVERALL"]["pcf"][0.5] == 1.0  # one dimension: n = 1, D = 1
        assert f"{expected_pairs[0]} matching and {expected_pairs[1]} non-matching" in result.notes[0]
    assert math.isnan(calc_fnmr_at_fmr([], [1.0, 2.0], (0.5,))[0.5])


def test_bad_top_k_and_fractions_are_refused():
    flags = B([[1]], dtype=torch.bool)
    with pytest.raises(ValueError, match="positive integers"):
        calc_cmc(flags, B([1]), None, (0,))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calc_pcf(torch.eye(3), (1.5,))


def test_select_worst_breaks_ties_by_position_and_skips_undefined():
    values = B([0.5, float("nan"), 0.0, 0.5, 0.0])
    assert select_worst(values, 4) == [2, 4, 0, 3]


def test_flatten_metrics_keys():
    nested = {"OVERALL": {"cmc": {1: 0.5}, "pcf": {0.5: 0.1}}, "cats": {"map": {5: 1.0}}}
    assert flatten_metrics(nested) == {"OVERALL/cmc/1": 0.5, "OVERALL/pcf/0.5": 0.1, "cats/map/5": 1.0}


def test_evaluate_arrays_hand_computed_with_categories():
    # 1-D items x = 0, 1, 2, 10; labels a a b b; everyone is query and gallery.
    # q0: 1 (d1, hit), 2 (d2), 3 (d10)        -> g = 1 0 0
    # q1: 0 (d1, hit) ties 2 (d1) -> 0 first   -> g = 1 0 0
    # q2: 1 (d1), 0 (d2), 3 (d8, hit)          -> g = 0 0 1
    # q3: 2 (d8, hit), 1, 0                    -> g = 1 0 0     (n_gt = 1 for all)
    emb = B([[0.0], [1.0], [2.0], [10.0]])
    result = evaluate_arrays(
        emb,
        ["a", "a", "b", "b"],
        [True] * 4,
        [True] * 4,
        categories=["x", "x", "y", "y"],
        cmc_top_k=(1, 3),
        precision_top_k=(1, 3),
        map_top_k=(3,),
        pcf_variance=(),
    )
    overall = result.metrics["OVERALL"]
    assert overall["cmc"] == {1: 0.75, 3: 1.0}
    assert overall["precision"] == {1: 0.75, 3: 1.0}
    assert overall["map"][3] == pytest.approx((3 + 1 / 3) / 4)
    assert result.metrics["x"]["cmc"][1] == 1.0
    assert result.metrics["y"]["cmc"][1] == 0.5
    assert result.metrics["y"]["map"][3] == pytest.approx((1 / 3 + 1) / 2)
    assert result.metrics_unreduced["OVERALL"]["map"][3].tolist() == pytest.approx([1, 1, 1 / 3, 1])
    assert result.metrics_flat["y/map/3"] == pytest.approx(2 / 3)
    assert result.worst_queries("OVERALL/map/3", 2) == [2, 0]
    assert result.worst_queries("y/cmc/1", 1) == [2]  # positions among all queries, not within the category


def test_per_category_pcf_uses_the_items_of_that_category():
    emb = torch.cat([torch.eye(4, 10), torch.eye(10)[:2] * 3])
    categories = ["a"] * 4 + ["b"] * 2
    result = evaluate_arrays(
        emb, [0, 0, 1, 1, 2, 2], [True] * 6, [True] * 6, categories=categories, pcf_variance=(0.5,)
    )
    assert result.metrics["a"]["pcf"][0.5] == pytest.approx(calc_pcf(torch.eye(4, 10), (0.5,))[0.5])
    assert result.metrics["b"]["pcf"][0.5] == pytest.approx(calc_pcf(emb[4:], (0.5,))[0.5])
    assert result.metrics["OVERALL"]["pcf"][0.5] == pytest.approx(calc_pcf(emb, (0.5,))[0.5])


def test_queries_without_ground_truth_are_counted_and_not_worst_by_precision():
    emb = B([[0.0], [1.0], [2.0]])
    result = evaluate_arrays(
        emb, [0, 0, 1], [True] * 3, [True] * 3, cmc_top_k=(1,), precision_top_k=(2,), map_top_k=(2,), pcf_variance=()
    )
    # item 2 is the only one of label 1: precision undefined, cmc = map = 0
    assert result.n_queries_without_gt == 1
    assert result.metrics_unreduced["OVERALL"]["cmc"][1][2] == 0
    assert result.metrics["OVERALL"]["precision"][2] == 1.0  # mean over queries 0 and 1 only
    assert 2 not in result.worst_queries("OVERALL/precision/2", 3)
    assert result.worst_queries("OVERALL/map/2", 1) == [2]


def naive_metrics(emb, labels, is_query, is_gallery, sequence, ks):
    """Definitions applied literally, per query, on the full distance matrix."""
    q_ids, g_ids = np.flatnonzero(is_query), np.flatnonzero(is_gallery)
    dist = torch.cdist(emb[q_ids].double(), emb[g_ids].double(), compute_mode="donot_use_mm_for_euclid_dist")
    out = {"cmc": {k: [] for k in ks}, "precision": {k: [] for k in ks}, "map": {k: [] for k in ks}}
    for i, q in enumerate(q_ids):
        allowed = [j for j in range(len(g_ids)) if sequence[g_ids[j]] != sequence[q]]
        order = sorted(allowed, key=lambda j: (dist[i, j].item(), j))
        g = [labels[g_ids[j]] == labels[q] for j in order]
        n_gt = sum(labels[g_ids[j]] == labels[q] for j in allowed)
        for k in ks:
            kk = min(k, len(g))
            hits = sum(g[:kk])
            out["cmc"][k].append(float(hits > 0))
            out["precision"][k].append(hits / min(n_gt, kk) if n_gt else float("nan"))
            ap = sum(sum(g[: i_ + 1]) / (i_ + 1) for i_ in range(kk) if g[i_])
            out["map"][k].append(ap / hits if hits else 0.0)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_random_metrics_match_naive_definitions(seed):
    g = torch.Generator().manual_seed(seed)
    n, ks = 90, (1, 3, 7, 200)
    emb = torch.randn(n, 8, generator=g)
    labels = torch.randint(0, 6, (n,), generator=g).numpy()
    is_query = torch.rand(n, generator=g).numpy() < 0.6
    is_gallery = ~is_query | (torch.rand(n, generator=g).numpy() < 0.5)
    sequence = torch.randint(0, 30, (n,), generator=g).numpy()
    result = evaluate_arrays(
        emb,
        labels,
        is_query,
        is_gallery,
        sequence=sequence,
        cmc_top_k=ks,
        precision_top_k=ks,
        map_top_k=ks,
        pcf_variance=(),
        chunk_size=13,
    )
    expected = naive_metrics(emb, labels, is_query, is_gallery, sequence, ks)
    for name in ("cmc", "precision", "map"):
        for k in ks:
            got = result.metrics_unreduced["OVERALL"][name][k].numpy()
            np.testing.assert_allclose(got, expected[name][k], err_msg=f"{name}@{k}")
            assert result.metrics["OVERALL"][name][k] == pytest.approx(np.nanmean(expected[name][k]))


def test_evaluate_embeddings_reads_an_oml_dataframe():
    import pandas as pd

    from explorer.metrics import evaluate_embeddings

    # same scene as the hand-computed case, plus a train row (is_query NA) that is neither query nor gallery
    df = pd.DataFrame(
        {
            "label": [0, 0, 1, 1, 1],
            "path": list("abcde"),
            "split": ["validation"] * 4 + ["train"],
            "is_query": [True, True, True, True, pd.NA],
            "is_gallery": [True, True, True, True, pd.NA],
            "category": ["x", "x", "y", "y", "y"],
            "sequence": [1, 2, 3, 4, 5],
        }
    )
    emb = B([[0.0], [1.0], [2.0], [10.0], [2.0]])
    result = evaluate_embeddings(emb, df, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(3,))
    assert result.n_queries == 4 and result.n_gallery == 4
    assert result.metrics["OVERALL"]["cmc"][1] == 0.75
    assert result.metrics["y"]["map"][3] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="rows"):
        evaluate_embeddings(emb[:3], df)


def test_category_keys_keep_their_type_and_flat_keys_their_text():
    import pandas as pd

    from explorer.metrics import evaluate_embeddings

    emb = B([[0.0], [1.0], [2.0], [10.0]])
    flags = [True] * 4
    df = pd.DataFrame({"label": [0, 0, 1, 1], "is_query": flags, "is_gallery": flags, "category": [7, 7, 8, 8]})
    by_df = evaluate_embeddings(emb, df, cmc_top_k=(1,), precision_top_k=(1,), map_top_k=(1,))
    by_arrays = evaluate_arrays(emb, [0, 0, 1, 1], flags, flags, categories=[7, 7, 8, 8], cmc_top_k=(1,))
    for result in (by_df, by_arrays):
        assert list(result.metrics) == ["OVERALL", 7, 8]
        assert all(type(key) is int for key in list(result.metrics)[1:])
        assert "8/cmc/1" in result.metrics_flat and 8 in result.metrics_unreduced
        assert result.worst_queries("8/cmc/1", 5) == [2, 3]  # item 2 (x=2) retrieves x=1 (label 0) first
    named = evaluate_arrays(emb, [0, 0, 1, 1], flags, flags, categories=["b", "b", "a", "a"], cmc_top_k=(1,))
    assert list(named.metrics) == ["OVERALL", "a", "b"]
    mixed = evaluate_arrays(emb, [0, 0, 1, 1], flags, flags, categories=["x", "x", 1, None], cmc_top_k=(1,))
    assert list(mixed.metrics) == ["OVERALL", 1, "x"]  # a missing category counts in OVERALL only
    assert mixed.metrics[1]["cmc"][1] == 0.0 and "1/cmc/1" in mixed.metrics_flat
