"""Lightning pieces beyond the seed's workflow: logged keys, NaN stop, metrics gathered from 2 processes.

The loggers (MLflow, W&B, TensorBoard) are tested in test_loggers.py."""

from __future__ import annotations

import os

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from explorer.data import DatasetQueryGallery, DatasetWithLabels, download_mock_dataset
from explorer.errors import InputError
from explorer.metrics import EmbeddingMetrics
from explorer.models import ViTExtractor
from explorer.models.pooling import pooling_of
from explorer.models.transforms import ImageConfig, eval_transform
from explorer.training import (
    AllTripletsMiner,
    BalanceSampler,
    ExtractorModule,
    FineTuneRecipe,
    MetricValCallback,
    NonFiniteLossError,
    TrainingSettings,
    TripletLossWithMiner,
)

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never wait on the Hugging Face hub

TRANSFORM = eval_transform(ImageConfig(input_size=48, mean=(0.5,) * 3, std=(0.5,) * 3))
TRAINER_OPTIONS = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False}


@pytest.fixture(scope="module")
def loaders(tmp_path_factory):
    root = tmp_path_factory.mktemp("mock")
    df_train, df_val = download_mock_dataset(root)
    train = DatasetWithLabels(df_train, dataset_root=root, transform=TRANSFORM)
    val = DatasetQueryGallery(df_val, dataset_root=root, transform=TRANSFORM)
    sampler = BalanceSampler(train.get_labels(), n_labels=2, n_instances=3)
    return DataLoader(train, batch_sampler=sampler), DataLoader(val, batch_size=5)


def _module(need_logs: bool = True) -> ExtractorModule:
    torch.manual_seed(0)
    extractor = ViTExtractor(None, arch="test_efficientnet")
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner(), need_logs=need_logs)
    return ExtractorModule(extractor, criterion, torch.optim.SGD(extractor.parameters(), lr=1e-3))


def test_extractor_module_logs_loss_and_triplet_statistics(loaders, tmp_path):
    train_loader, val_loader = loaders
    callback = MetricValCallback(EmbeddingMetrics(cmc_top_k=(1,), verbose=False))
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], logger=False, default_root_dir=tmp_path, **TRAINER_OPTIONS)
    trainer.fit(_module(), train_dataloaders=train_loader, val_dataloaders=val_loader)
    logged = trainer.callback_metrics
    for key in ("loss_epoch", "active_tri_epoch", "pos_dist_epoch", "neg_dist_epoch", "OVERALL/cmc/1"):
        assert key in logged
    assert callback.last_metrics["OVERALL/cmc/1"] == pytest.approx(float(logged["OVERALL/cmc/1"]))


def test_nan_loss_stops_lightning_training_before_the_step(loaders, tmp_path):
    train_loader, _ = loaders
    module = _module()
    module.extractor.model.conv_stem.weight.data[0, 0, 0, 0] = float("nan")
    before = {k: v.detach().clone() for k, v in module.extractor.named_parameters()}
    trainer = pl.Trainer(max_epochs=1, logger=False, default_root_dir=tmp_path, **TRAINER_OPTIONS)
    with pytest.raises(NonFiniteLossError, match="loss became nan at epoch 0, batch 0.*last saved checkpoint"):
        trainer.fit(module, train_dataloaders=train_loader)
    for key, value in module.extractor.named_parameters():  # no optimiser step was taken
        torch.testing.assert_close(value.detach(), before[key], equal_nan=True)


def test_log_images_without_paths_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="extra_keys=\\('paths',\\)"):
        MetricValCallback(EmbeddingMetrics(), log_images=True)


def test_validation_metrics_gathered_from_two_processes_equal_single_process(loaders, tmp_path):
    """DDP splits (and pads) the 12 validation items across processes; gathering by index must undo that."""
    _, val_loader = loaders
    module = _module()
    single = MetricValCallback(EmbeddingMetrics(cmc_top_k=(1, 2), verbose=False))
    pl.Trainer(callbacks=[single], logger=False, default_root_dir=tmp_path, devices=1, **TRAINER_OPTIONS).validate(
        module, val_loader, verbose=False
    )
    trainer = pl.Trainer(
        callbacks=[MetricValCallback(EmbeddingMetrics(cmc_top_k=(1, 2), verbose=False))],
        logger=False,
        default_root_dir=tmp_path,
        devices=2,
        strategy="ddp_spawn",
        **TRAINER_OPTIONS,
    )
    trainer.validate(module, DataLoader(val_loader.dataset, batch_size=5), verbose=False)
    gathered = {key: float(value) for key, value in trainer.callback_metrics.items()}
    assert gathered.keys() >= single.last_metrics.keys()
    for key, value in single.last_metrics.items():
        assert gathered[key] == pytest.approx(value, abs=1e-6), key


class _Watch(pl.Callback):
    """Per training step: BatchNorm modes, the frozen parameters and the learning rates."""

    def __init__(self) -> None:
        self.steps: list[tuple[set[bool], list[str], list[float]]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        extractor = pl_module.extractor
        modes = {m.training for m in extractor.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
        frozen = [name for name, p in extractor.named_parameters() if not p.requires_grad]
        self.steps.append((modes, frozen, [group["lr"] for group in trainer.optimizers[0].param_groups]))


def test_without_an_optimizer_the_module_fine_tunes_with_the_shared_recipe_and_undoes_it(loaders, tmp_path):
    train_loader, _ = loaders
    torch.manual_seed(0)
    extractor = ViTExtractor(None, arch="test_efficientnet")
    extractor.preset = "pretrained somewhere"  # the recipe's automatic switch: on for learned weights
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner())
    recipe = FineTuneRecipe(lr=1e-3, frozen_fraction=0.3, layer_decay=0.5, warmup_fraction=0.0, final_lr_fraction=0.1)
    watch = _Watch()
    trainer = pl.Trainer(max_epochs=2, callbacks=[watch], logger=False, default_root_dir=tmp_path, **TRAINER_OPTIONS)
    trainer.fit(ExtractorModule(extractor, criterion, recipe=recipe), train_dataloaders=train_loader)
    assert watch.steps and all(modes == {False} and frozen for modes, frozen, _ in watch.steps)
    top_lrs = [max(lrs) for _, _, lrs in watch.steps]
    assert top_lrs[0] < 1e-3 and top_lrs == sorted(top_lrs, reverse=True)  # cosine over the trainer's steps
    stage_lrs = sorted(set(watch.steps[0][2]), reverse=True)
    assert stage_lrs[1] == pytest.approx(stage_lrs[0] * 0.5)  # the stage below learns at layer_decay x
    assert all(p.requires_grad for p in extractor.parameters())  # undone when the fit ends
    extractor.train()
    extractor(torch.zeros(2, 3, 48, 48))
    assert all(m.training for m in extractor.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))


def test_a_fine_tuned_fit_pools_with_gem_and_resumes_from_its_lightning_checkpoint(loaders, tmp_path):
    train_loader, _ = loaders
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner())

    def fine_tuned_module() -> ExtractorModule:
        extractor = ViTExtractor(None, arch="test_efficientnet")
        extractor.preset = "pretrained somewhere"  # the recipe's automatic switch: on for learned weights
        return ExtractorModule(extractor, criterion, recipe=FineTuneRecipe(lr=1e-3))

    options = {"logger": False, "default_root_dir": tmp_path, **TRAINER_OPTIONS}
    first = fine_tuned_module()
    trainer = pl.Trainer(max_epochs=1, **options)
    trainer.fit(first, train_dataloaders=train_loader)
    assert pooling_of(first.extractor.model) == "gem"
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    resumed = fine_tuned_module()  # a fresh extractor, average pooling, as a script builds it again
    assert pooling_of(resumed.extractor.model) is None
    pl.Trainer(max_epochs=2, **options).fit(resumed, train_dataloaders=train_loader, ckpt_path=tmp_path / "run.ckpt")
    assert pooling_of(resumed.extractor.model) == "gem"
    assert float(resumed.extractor.model.global_pool.pool.p) == 3.0


def test_the_default_recipe_is_the_training_settings_one_and_optimizer_or_recipe_not_both():
    extractor = ViTExtractor(None, arch="test_efficientnet")
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner())
    assert ExtractorModule(extractor, criterion).recipe == TrainingSettings().recipe
    optimizer = torch.optim.SGD(extractor.parameters(), lr=1e-3)
    assert ExtractorModule(extractor, criterion, optimizer).recipe is None
    with pytest.raises(InputError, match="an optimizer or a recipe"):
        ExtractorModule(extractor, criterion, optimizer, recipe=FineTuneRecipe())
