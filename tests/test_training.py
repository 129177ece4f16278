"""Sampler invariants, miners against brute force, losses against torch, and the `train_extractor` loop."""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from explorer import const as C
from explorer.data import generate_shapes_dataset
from explorer.data.datasets import DatasetQueryGallery
from explorer.errors import InputError
from explorer.models import ViTExtractor
from explorer.models.pooling import pooling_of
from explorer.training import (
    AllTripletsMiner,
    BalanceSampler,
    FineTuneRecipe,
    HardTripletsMiner,
    NHardTripletsMiner,
    TrainingSettings,
    TripletLoss,
    TripletLossWithMiner,
    evaluate_extractor,
    train_extractor,
)
from explorer.training import train as train_module

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never wait on the Hugging Face hub

# 7 labels; label 3 has 2 items (< n_instances), label 6 has 9
LABELS = [0] * 4 + [1] * 5 + [2] * 3 + [3] * 2 + [4] * 6 + [5] * 4 + [6] * 9


# --- BalanceSampler ---
def test_balance_sampler_batches_hold_n_labels_times_n_instances():
    sampler = BalanceSampler(LABELS, n_labels=3, n_instances=4, seed=0)
    batches = list(sampler)
    assert sampler.batch_size == 12 and len(sampler) == len(batches) == 7 // 3
    seen_labels: list[int] = []
    for batch in batches:
        counts = Counter(LABELS[i] for i in batch)
        assert len(batch) == 12 and len(counts) == 3 and set(counts.values()) == {4}
        seen_labels.extend(counts)
        for label in counts:
            items = {i for i in batch if LABELS[i] == label}
            if len(sampler.lbl2idx[label]) >= 4:
                assert len(items) == 4  # enough items: no repetition
            else:
                assert items == set(sampler.lbl2idx[label])  # too few: all of them, plus repeats
    assert len(seen_labels) == len(set(seen_labels))  # each label at most once per epoch


def test_balance_sampler_lbl2idx_maps_labels_to_their_indices():
    sampler = BalanceSampler(LABELS, n_labels=2, n_instances=2)
    assert sampler.lbl2idx[3] == [12, 13] and sampler.lbl2idx[0] == [0, 1, 2, 3]
    assert sorted(i for indices in sampler.lbl2idx.values() for i in indices) == list(range(len(LABELS)))


def test_balance_sampler_epochs_differ_and_cover_labels_evenly():
    sampler = BalanceSampler(LABELS, n_labels=2, n_instances=2, seed=1)
    epochs = [tuple(map(tuple, sampler)) for _ in range(20)]
    assert len(set(epochs)) > 1
    for epoch in epochs:  # within an epoch: 3 batches x 2 labels, each label in at most one batch
        per_label = Counter(label for batch in epoch for label in {LABELS[i] for i in batch})
        frequencies = [per_label[label] for label in range(7)]
        assert sum(frequencies) == len(sampler) * 2 and max(frequencies) - min(frequencies) <= 1
        assert set(frequencies) <= {0, 1}
    used = Counter(LABELS[i] for epoch in epochs for batch in epoch for i in batch)
    assert set(used) == set(range(7))  # over epochs, every label gets its turn


@pytest.mark.parametrize(
    ("labels", "n_labels", "n_instances", "message"),
    [
        (LABELS, 1, 2, "n_labels must be at least 2"),
        (LABELS, 2, 1, "n_instances must be at least 2"),
        (LABELS, 8, 2, "only 7 distinct labels"),
        ([0, 0, 1, 2, 2], 2, 2, "single item \\(1\\)"),
    ],
)
def test_balance_sampler_rejects_impossible_settings(labels, n_labels, n_instances, message):
    with pytest.raises(ValueError, match=message):
        BalanceSampler(labels, n_labels, n_instances)


def test_seed_style_loader_yields_balanced_batches():
    dataset = [{"labels": label, "idx": i} for i, label in enumerate(LABELS)]
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=BalanceSampler(LABELS, n_labels=2, n_instances=3))
    for batch in loader:
        assert sorted(Counter(batch["labels"].tolist()).values()) == [3, 3]


# --- miners ---
def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])  # label 3: no positive
    return torch.randn(len(labels), 5, generator=generator), labels


def _brute_force_triplets(labels):
    n = len(labels)
    return {
        (a, p, q)
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    }


def _as_set(triplets):
    return set(zip(*(t.tolist() for t in triplets), strict=True))


def test_all_triplets_miner_returns_every_valid_triplet():
    features, labels = _batch()
    mined = AllTripletsMiner().sample(features, labels)
    assert len(mined[0]) == len(_brute_force_triplets(labels.tolist()))
    assert _as_set(mined) == _brute_force_triplets(labels.tolist())


def test_all_triplets_miner_caps_with_a_random_subset_of_valid_triplets():
    features, labels = _batch()
    mined = AllTripletsMiner(max_output_triplets=10).sample(features, labels)
    triplets = _as_set(mined)
    assert len(mined[0]) == len(triplets) == 10
    assert triplets <= _brute_force_triplets(labels.tolist())


def test_hard_triplets_miner_takes_farthest_positive_and_nearest_negative():
    features, labels = _batch(1)
    dist = torch.cdist(features, features)
    expected = set()
    for a in range(len(labels)):
        positives = [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        negatives = [q for q in range(len(labels)) if labels[q] != labels[a]]
        if positives:
            expected.add((a, max(positives, key=lambda p: dist[a, p]), min(negatives, key=lambda q: dist[a, q])))
    assert _as_set(HardTripletsMiner().sample(features, labels)) == expected


def test_n_hard_triplets_miner_combines_the_n_hardest_positives_and_negatives():
    features, labels = _batch(2)
    dist = torch.cdist(features, features)
    expected = set()
    for a in range(len(labels)):
        positives = sorted(
            (p for p in range(len(labels)) if p != a and labels[p] == labels[a]), key=lambda p: -dist[a, p]
        )
        negatives = sorted((q for q in range(len(labels)) if labels[q] != labels[a]), key=lambda q: dist[a, q])
        expected |= {(a, p, q) for p in positives[:2] for q in negatives[:3]}
    mined = NHardTripletsMiner(n_positive=2, n_negative=3).sample(features, labels)
    assert _as_set(mined) == expected and len(mined[0]) == len(expected)


# --- losses ---
def test_triplet_loss_equals_torch_triplet_margin_loss():
    generator = torch.Generator().manual_seed(0)
    anchor, positive, negative = (torch.randn(50, 8, generator=generator) for _ in range(3))
    expected = nn.TripletMarginLoss(margin=0.3)(anchor, positive, negative)
    torch.testing.assert_close(TripletLoss(margin=0.3)(anchor, positive, negative), expected)


def test_a_relative_margin_scales_with_the_embeddings_and_an_absolute_one_does_not():
    generator = torch.Generator().manual_seed(0)
    anchor, positive, negative = (torch.randn(50, 8, generator=generator) for _ in range(3))
    relative = TripletLoss(margin=0.2, relative_margin=True)
    scale = torch.cat([(anchor - positive).norm(dim=1), (anchor - negative).norm(dim=1)]).mean()
    expected = nn.TripletMarginLoss(margin=0.2 * float(scale))(anchor, positive, negative)
    torch.testing.assert_close(relative(anchor, positive, negative), expected)
    scaled = [40 * t for t in (anchor, positive, negative)]  # an unnormalised CNN's distances
    torch.testing.assert_close(relative(*scaled), 40 * relative(anchor, positive, negative))
    absolute = TripletLoss(margin=0.2)
    assert float(absolute(*scaled)) != pytest.approx(40 * float(absolute(anchor, positive, negative)))


def test_triplet_loss_of_a_repeated_item_uses_distance_zero_with_a_finite_gradient():
    features = torch.tensor([[1.0, 2.0, 3.0], [4.0, 6.0, 3.0]], requires_grad=True)
    anchor, positive, negative = features[[0]], features[[0]], features[[1]]  # the sampler repeats small classes
    criterion = TripletLoss(margin=6.0, need_logs=True)
    loss = criterion(anchor, positive, negative)
    assert criterion.last_logs["pos_dist"] == 0.0 and criterion.last_logs["neg_dist"] == pytest.approx(5.0)
    assert loss.item() == pytest.approx(6.0 + 0.0 - 5.0)
    loss.backward()
    assert torch.isfinite(features.grad).all()
    torch.testing.assert_close(features.grad[1], torch.tensor([-0.6, -0.8, 0.0]))  # d(-||n - a||)/dn
    soft = TripletLoss(margin=None)(anchor, positive, negative)
    assert soft.item() == pytest.approx(torch.log1p(torch.exp(torch.tensor(-5.0))).item(), rel=1e-6)


def test_soft_triplet_loss_is_log_one_plus_exp_of_distance_difference():
    anchor, positive, negative = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]])
    loss = TripletLoss(margin=None)(anchor, positive, negative)
    assert loss.item() == pytest.approx(torch.log1p(torch.exp(torch.tensor(5.0 - 1.0))).item(), rel=1e-5)


def test_triplet_loss_with_miner_matches_torch_over_all_triplets_and_logs():
    features, labels = _batch(3)
    criterion = TripletLossWithMiner(margin=0.2, miner=AllTripletsMiner(), need_logs=True)
    loss = criterion(features, labels)
    a, p, q = (torch.tensor(x) for x in zip(*sorted(_brute_force_triplets(labels.tolist())), strict=True))
    torch.testing.assert_close(loss, nn.TripletMarginLoss(margin=0.2)(features[a], features[p], features[q]))
    pos = torch.nn.functional.pairwise_distance(features[a], features[p])
    neg = torch.nn.functional.pairwise_distance(features[a], features[q])
    assert criterion.last_logs["active_tri"] == pytest.approx(float((0.2 + pos - neg > 0).float().mean()))
    assert criterion.last_logs["pos_dist"] == pytest.approx(float(pos.mean()), rel=1e-5)
    assert criterion.last_logs["neg_dist"] == pytest.approx(float(neg.mean()), rel=1e-5)


def test_triplet_loss_without_logs_keeps_last_logs_empty_and_needs_triplets():
    features, labels = _batch()
    criterion = TripletLossWithMiner(margin=0.1)
    criterion(features, labels)
    assert criterion.last_logs == {}
    with pytest.raises(ValueError, match="no triplet.*BalanceSampler"):
        criterion(features[:2], torch.tensor([0, 1]))


# --- train_extractor ---
def _generated_shapes(root, n_classes: int, images_per_class: int, image_size: int):
    """Generated shapes in `root`: (root, train rows, validation rows), half of the classes each."""
    df = generate_shapes_dataset(root, n_classes, images_per_class, image_size=image_size, seed=0)
    split = {name: part.reset_index(drop=True) for name, part in df.groupby(C.SPLIT_COLUMN)}
    return root, split[C.TRAIN_SPLIT], split[C.VALIDATION_SPLIT]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return _generated_shapes(tmp_path_factory.mktemp("shapes"), n_classes=48, images_per_class=12, image_size=64)


@pytest.fixture(scope="module")
def small_shapes(tmp_path_factory):
    """8 train + 8 validation classes of 4 images at 32 px: a run of a few epochs takes seconds."""
    return _generated_shapes(tmp_path_factory.mktemp("small-shapes"), n_classes=16, images_per_class=4, image_size=32)


QUICK = TrainingSettings(epochs=2, lr=1e-3, image_size=32, n_labels=4, n_instances=3, augment=False)


def _weights(extractor) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in extractor.state_dict().items()}


def _assert_same_weights(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=0, atol=0)


def _validation_cmc_1(extractor, root, val_df) -> float:
    dataset = DatasetQueryGallery(val_df, root, transform=extractor.get_transforms())
    return evaluate_extractor(extractor, dataset).metrics_flat["OVERALL/cmc/1"]


def test_train_extractor_reports_history_progress_and_writes_a_loadable_checkpoint(small_shapes, tmp_path):
    root, train_df, val_df = small_shapes
    progress, records, batches = [], [], []
    result = train_extractor(
        ViTExtractor(None, arch="test_efficientnet", normalise_features=True),
        train_df,
        val_df,
        dataset_root=root,
        settings=QUICK,
        progress=lambda fraction, message: progress.append((fraction, message)),
        on_epoch_end=records.append,
        on_batch_end=batches.append,
        checkpoint_path=tmp_path / "model.safetensors",
    )
    assert result.stopped_reason is None and result.epochs_done == 2
    assert [r.epoch for r in result.history] == [0, 1, 2] == [r.epoch for r in records]  # epoch 0: before training
    assert [(b.epoch, b.batch) for b in batches] == [(1, 1), (1, 2), (2, 1), (2, 2)]  # 8 labels / 4 per batch
    assert [b.position for b in batches] == [0.5, 1.0, 1.5, 2.0]
    fractions = [fraction for fraction, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    messages = [message for _, message in progress]
    assert messages[0] == "validating before training: 32 queries, 32 gallery images"
    assert any(m.startswith("epoch 2/2, batch 1/2, loss ") for m in messages)
    assert "validating after epoch 1: 32 queries, 32 gallery images" in messages
    frame = result.history_frame()
    assert list(frame.columns) == [
        "epoch",
        "loss",
        "active_tri",
        "pos_dist",
        "neg_dist",
        "val_cmc_1",
        "val_map_5",
        "seconds",
    ]
    assert frame.loc[0, ["loss", "active_tri", "pos_dist", "neg_dist"]].isna().all()  # no training yet at epoch 0
    assert frame.loc[0, "val_cmc_1"] == pytest.approx(result.initial_metrics["OVERALL/cmc/1"])
    assert frame.loc[1:].notna().all().all() and (frame[["val_cmc_1", "val_map_5"]].le(1)).all().all()
    loaded = ViTExtractor(result.checkpoint_path)
    assert loaded.image_config.input_size == 32 and loaded.normalise_features
    assert loaded.checkpoint_metadata.training["epochs_done"] == 2
    assert loaded.checkpoint_metadata.training["epoch_in_use"] == result.kept_epoch
    kept = result.history[result.kept_epoch]
    assert loaded.checkpoint_metadata.metrics["OVERALL/cmc/1"] == pytest.approx(kept.val_cmc_1)
    _assert_same_weights(_weights(loaded), _weights(result.extractor))  # the checkpoint holds the weights in use


def test_an_absurd_learning_rate_ends_on_the_best_epoch_never_worse_than_before(small_shapes):
    root, train_df, val_df = small_shapes
    torch.manual_seed(0)
    extractor = ViTExtractor(None, arch="test_efficientnet", normalise_features=True)
    before = _weights(extractor)
    settings = TrainingSettings(epochs=3, lr=1.0, image_size=32, n_labels=4, n_instances=3, augment=False)
    result = train_extractor(extractor, train_df, val_df, dataset_root=root, settings=settings)
    values = [record.val_cmc_1 for record in result.history]
    best = values.index(max(values))  # ties: the earlier epoch
    assert min(values[1:]) < max(values)  # some epoch after the kept one is worse: the case is constructed
    assert result.kept_epoch == best and f"using epoch {best} of 3" in result.kept_summary()
    assert _validation_cmc_1(extractor, root, val_df) == pytest.approx(values[best])  # the kept weights give it
    assert result.final_metrics["OVERALL/cmc/1"] >= result.initial_metrics["OVERALL/cmc/1"]
    if best == 0:
        _assert_same_weights(_weights(extractor), before)


def _scripted_validation(monkeypatch, cmc_at_1: list[float]) -> None:
    """Make each validation of `train_extractor` (epoch 0 first) report the next of `cmc_at_1`."""
    values = iter(cmc_at_1)

    def evaluate(*args, **kwargs):
        value = next(values)
        return SimpleNamespace(metrics_flat={"OVERALL/cmc/1": value, "OVERALL/map/5": value / 2})

    monkeypatch.setattr(train_module, "evaluate_extractor", evaluate)


@pytest.mark.parametrize("fine_tune", [False, True])  # True: the recipe switches the pooling to GeM
@pytest.mark.parametrize(("keep", "kept_epoch"), [("best", 1), ("last", 3)])
def test_the_run_ends_on_the_kept_epoch_and_its_checkpoint_holds_those_weights(
    small_shapes, tmp_path, monkeypatch, keep, kept_epoch, fine_tune
):
    root, train_df, val_df = small_shapes
    _scripted_validation(monkeypatch, [0.2, 0.5, 0.3, 0.4])  # epoch 1 is the best, epoch 3 the last
    extractor = ViTExtractor(None, arch="test_efficientnet")
    weights_after = {}
    settings = TrainingSettings(
        epochs=3, lr=1e-2, image_size=32, n_labels=4, n_instances=3, keep=keep, fine_tune=fine_tune
    )
    result = train_extractor(
        extractor,
        train_df,
        val_df,
        dataset_root=root,
        settings=settings,
        on_epoch_end=lambda record: weights_after.setdefault(record.epoch, _weights(extractor)),
        checkpoint_path=tmp_path / "model.safetensors",
    )
    assert result.kept_epoch == kept_epoch and result.epochs_done == 3
    assert result.final_metrics["OVERALL/cmc/1"] == [0.2, 0.5, 0.3, 0.4][kept_epoch]
    _assert_same_weights(_weights(extractor), weights_after[kept_epoch])
    saved = ViTExtractor(result.checkpoint_path)
    _assert_same_weights(_weights(saved), weights_after[kept_epoch])
    assert saved.checkpoint_metadata.training["epoch_in_use"] == kept_epoch
    assert pooling_of(extractor.model) == pooling_of(saved.model) == ("gem" if fine_tune else None)
    images = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(saved.eval()(images), extractor.eval()(images), rtol=0, atol=0)
    summary = "best OVERALL/cmc/1 = 0.5000" if keep == "best" else "the last; OVERALL/cmc/1 = 0.4000"
    assert result.kept_summary() == f"using epoch {kept_epoch} of 3 ({summary})"


@pytest.mark.parametrize("fine_tune", [False, True])
def test_when_no_epoch_beats_the_start_the_weights_before_training_are_kept(small_shapes, monkeypatch, fine_tune):
    root, train_df, val_df = small_shapes
    _scripted_validation(monkeypatch, [0.5, 0.5, 0.1])  # a tie is not better: epoch 0 stays
    extractor = ViTExtractor(None, arch="test_efficientnet").eval()
    before, images = _weights(extractor), torch.rand(2, 3, 32, 32)
    features_before = extractor(images)
    settings = replace(QUICK, lr=1e-2, fine_tune=fine_tune)
    result = train_extractor(extractor, train_df, val_df, dataset_root=root, settings=settings)
    assert result.kept_epoch == 0 and "the weights before training" in result.kept_summary()
    _assert_same_weights(_weights(extractor), before)  # no GeM exponent either: the average pooling is back
    assert pooling_of(extractor.model) is None
    torch.testing.assert_close(extractor(images), features_before, rtol=0, atol=0)


def test_select_by_must_name_a_validation_metric(small_shapes):
    root, train_df, val_df = small_shapes
    with pytest.raises(InputError, match="select_by must be a validation metric"):
        TrainingSettings(select_by="cmc@1")
    with pytest.raises(InputError, match="keep must be one of best, last"):
        TrainingSettings(keep="first")
    settings = replace(QUICK, select_by="OVERALL/cmc/7")
    with pytest.raises(InputError, match="not a validation metric of this data: choose one of .*OVERALL/cmc/1"):
        train_extractor(
            ViTExtractor(None, arch="test_efficientnet"), train_df, val_df, dataset_root=root, settings=settings
        )


def test_train_extractor_stops_on_cancel_with_the_kept_weights(small_shapes):
    root, train_df, val_df = small_shapes
    cancel = threading.Event()
    extractor = ViTExtractor(None, arch="test_efficientnet")

    def cancel_after_first_epoch(record):
        if record.epoch == 1:
            cancel.set()

    result = train_extractor(
        extractor,
        train_df,
        val_df,
        dataset_root=root,
        settings=QUICK,
        on_epoch_end=cancel_after_first_epoch,
        cancel=cancel,
    )
    assert result.stopped_reason.startswith("Cancelled") and result.epochs_done == 1


def test_train_extractor_stops_on_nan_loss_and_keeps_the_checkpoint_of_the_weights_in_use(small_shapes, tmp_path):
    root, train_df, val_df = small_shapes
    extractor = ViTExtractor(None, arch="test_efficientnet")
    forward = extractor.forward
    epochs_seen = []

    def nan_in_second_epoch(images):
        out = forward(images)
        return out * float("nan") if extractor.training and len(epochs_seen) >= 2 else out

    extractor.forward = nan_in_second_epoch
    path = tmp_path / "model.safetensors"
    result = train_extractor(
        extractor,
        train_df,
        val_df,
        dataset_root=root,
        settings=replace(QUICK, keep="last"),
        checkpoint_path=path,
        on_epoch_end=epochs_seen.append,
    )
    assert "nan" in result.stopped_reason and "stopped in epoch 2" in result.stopped_reason
    assert result.epochs_done == 1 and result.kept_epoch == 1
    _assert_same_weights(_weights(ViTExtractor(path)), _weights(extractor))


def test_training_on_shapes_raises_validation_cmc_at_1(shapes):
    root, train_df, val_df = shapes
    # OML's absolute margin: with the relative one this tiny random init gained 0.038 here (measured once)
    settings = TrainingSettings(
        epochs=20, lr=3e-3, image_size=64, n_labels=8, n_instances=4, margin=0.2, relative_margin=False, augment=False
    )
    result = train_extractor(
        ViTExtractor(None, arch="test_efficientnet", normalise_features=True),
        train_df,
        val_df,
        dataset_root=root,
        settings=settings,
    )
    before, after = result.initial_metrics["OVERALL/cmc/1"], result.final_metrics["OVERALL/cmc/1"]
    assert after >= before + 0.05, (before, [r.val_cmc_1 for r in result.history])


def _batchnorm_modes(extractor) -> set[bool]:
    return {m.training for m in extractor.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def _pretrained_tiny() -> ViTExtractor:
    torch.manual_seed(0)
    extractor = ViTExtractor(None, arch="test_efficientnet")
    extractor.preset = "pretrained somewhere"  # what a preset, timm weights or a checkpoint set
    return extractor


def test_pretrained_weights_get_the_fine_tuning_recipe_for_the_run_and_lose_it_afterwards(small_shapes):
    root, train_df, val_df = small_shapes
    extractor = _pretrained_tiny()
    seen = []  # per step: BatchNorm modes, frozen parameters

    def during_training(_record) -> None:
        frozen = [name for name, p in extractor.named_parameters() if not p.requires_grad]
        seen.append((_batchnorm_modes(extractor), frozen))

    settings = replace(QUICK, frozen_fraction=0.3, keep="last")
    train_extractor(extractor, train_df, val_df, dataset_root=root, settings=settings, on_batch_end=during_training)
    assert seen and all(modes == {False} and frozen for modes, frozen in seen)  # statistics and first stages
    assert all(frozen[0].startswith("model.conv_stem") for _, frozen in seen)
    assert all(p.requires_grad for p in extractor.parameters())
    extractor.train()
    extractor(torch.zeros(2, 3, 32, 32))
    assert _batchnorm_modes(extractor) == {True}  # an ordinary model again


def test_settings_hold_the_recipe_and_check_its_fields():
    settings = TrainingSettings(lr=1e-3, layer_decay=0.5, fine_tune=True)
    assert settings.recipe == FineTuneRecipe(lr=1e-3, layer_decay=0.5, fine_tune=True)
    assert TrainingSettings().recipe == FineTuneRecipe()  # one set of defaults
    assert TrainingSettings(warmup_fraction=1).warmup_fraction == 1.0  # normalised like the other fields
    with pytest.raises(InputError, match="layer_decay must be above 0"):  # the recipe's checks (test_recipe.py)
        TrainingSettings(layer_decay=0.0)
    with pytest.raises(InputError, match="relative_margin must be True or False"):
        TrainingSettings(relative_margin="yes")


def test_when_epoch_0_is_kept_the_extractor_keeps_its_own_image_size(small_shapes, monkeypatch):
    root, train_df, val_df = small_shapes
    _scripted_validation(monkeypatch, [0.9, 0.5, 0.4])  # training only got worse
    extractor = ViTExtractor(None, arch="test_efficientnet")
    own_size = extractor.image_config.input_size
    result = train_extractor(extractor, train_df, val_df, dataset_root=root, settings=replace(QUICK, image_size=48))
    assert result.kept_epoch == 0 and extractor.image_config.input_size == own_size != 48


def test_epoch_0_is_validated_at_the_extractors_own_size_and_training_at_the_asked_one(small_shapes, monkeypatch):
    """The baseline is what the extractor gives in use, so no gain or drop shown is only a size change."""
    root, train_df, val_df = small_shapes
    sizes = []

    def evaluate(extractor, dataset, *args, **kwargs):
        sizes.append(dataset[0][C.INPUT_TENSORS_KEY].shape[-1])
        return SimpleNamespace(metrics_flat={"OVERALL/cmc/1": 0.5, "OVERALL/map/5": 0.5})

    monkeypatch.setattr(train_module, "evaluate_extractor", evaluate)
    extractor = ViTExtractor(None, arch="test_efficientnet")
    extractor.set_input_size(40)
    train_extractor(extractor, train_df, val_df, dataset_root=root, settings=replace(QUICK, image_size=32))
    assert sizes == [40, 32, 32]


def test_automatic_size_and_n_labels_fit_the_data_and_are_what_the_checkpoint_stores(small_shapes, tmp_path):
    root, train_df, val_df = small_shapes  # 8 train labels of 32 px images
    extractor = ViTExtractor(None, arch="test_efficientnet")
    assert extractor.image_config.input_size > 32
    settings = replace(QUICK, epochs=1, image_size=None, n_labels=20)
    result = train_extractor(
        extractor, train_df, val_df, dataset_root=root, settings=settings, checkpoint_path=tmp_path / "m.safetensors"
    )
    assert result.settings.image_size == 80  # the 32 px images upsampled to half the model's own 160 px
    assert result.settings.n_labels == 8  # every train label in one batch, not a crash
    assert result.epochs_done == 1
    stored = ViTExtractor(result.checkpoint_path).checkpoint_metadata.training
    assert stored["n_labels"] == 8 and stored["image_size"] == 80 and stored["layer_decay"] == settings.layer_decay


def _images(folder, sizes) -> list[str]:
    from PIL import Image

    paths = []
    for index, size in enumerate(sizes):
        paths.append(str(folder / f"{index}.png"))
        Image.new("RGB", size).save(paths[-1])
    return paths


def test_automatic_image_size_is_the_models_own_at_most_the_images_side_at_least_half_the_models(tmp_path):
    photos = _images(tmp_path, [(300, 500), (280, 260), (400, 400)])
    assert train_module.automatic_image_size(224, photos) == 224  # photos feed the model's own size
    assert train_module.automatic_image_size(384, photos) == 320  # median side 300, rounded up to 32
    assert train_module.automatic_image_size(224, []) == 224  # nothing to read: the model's own
    (tmp_path / "small").mkdir()
    small = _images(tmp_path / "small", [(150, 150), (130, 160), (140, 150)])  # median 140, rounded up to 160
    assert train_module.automatic_image_size(224, small) == 160
    (tmp_path / "tiny").mkdir()
    tiny = _images(tmp_path / "tiny", [(8, 8)] * 3)  # digits-like: upsampled to half the model's size
    assert train_module.automatic_image_size(224, tiny) == 112
    assert train_module.automatic_image_size(48, tiny) == 32  # never below the smallest training size
