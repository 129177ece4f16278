"""Experiment trackers for real: a tiny Lightning run logs curves and worst-query pictures to MLflow's file store and
to an offline W&B run, read back from their files; a missing package or key is one clear message."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from explorer import const as C
from explorer.data import DatasetQueryGallery, DatasetWithLabels
from explorer.data.shapes import generate_shapes_dataset
from explorer.metrics import EmbeddingMetrics
from explorer.models import ViTExtractor
from explorer.models.transforms import ImageConfig, eval_transform
from explorer.training import (
    AllTripletsMiner,
    BalanceSampler,
    ExtractorModule,
    MetricValCallback,
    TripletLossWithMiner,
    create_logger,
)

IMAGE_SIZE = 32
TRAIN_STEPS = 2  # 4 train labels, 2 per batch
IMAGE_TAG = "worst_queries/OVERALL/cmc/1"
CURVES = ("loss_step", "loss_epoch", "active_tri_epoch", "OVERALL/cmc/1")
WANDB_LOG_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of (crc, length, type) records
WANDB_RECORD_HEADER = struct.Struct("<IHB")
WANDB_FILE_HEADER = struct.Struct("<4sHB")
WANDB_LAST_CHUNK_TYPES = (1, 4)  # FULL, LAST


@pytest.fixture(autouse=True)
def local_only_environment(tmp_path):
    """Every tracker offline and writing under tmp_path; the environment is put back afterwards."""
    with mock.patch.dict(os.environ):
        for variable in ("MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE", "WANDB_API_KEY", "WANDB_BASE_URL"):
            os.environ.pop(variable, None)
        for variable in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            os.environ[variable] = str(tmp_path / "wandb_home")
        os.environ.update(
            WANDB_MODE="offline",
            WANDB_SILENT="true",
            WANDB_CONSOLE="off",
            WANDB_DISABLE_GIT="true",
            WANDB_X_DISABLE_STATS="true",
            WANDB_X_DISABLE_MACHINE_INFO="true",
            NETRC=str(tmp_path / "netrc"),  # absent: a developer's own `wandb login` is not seen
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
        )
        yield


@pytest.fixture(scope="module")
def loaders(tmp_path_factory) -> tuple[DataLoader, DataLoader]:
    root = tmp_path_factory.mktemp("shapes")
    df = generate_shapes_dataset(root, n_classes=8, images_per_class=3, image_size=IMAGE_SIZE)
    transform = eval_transform(ImageConfig(input_size=IMAGE_SIZE, mean=(0.5,) * 3, std=(0.5,) * 3))
    split = {
        name: df[df[C.SPLIT_COLUMN] == name].reset_index(drop=True) for name in (C.TRAIN_SPLIT, C.VALIDATION_SPLIT)
    }
    train = DatasetWithLabels(split[C.TRAIN_SPLIT], dataset_root=root, transform=transform)
    val = DatasetQueryGallery(split[C.VALIDATION_SPLIT], dataset_root=root, transform=transform)
    sampler = BalanceSampler(train.get_labels(), n_labels=2, n_instances=3)
    return DataLoader(train, batch_sampler=sampler), DataLoader(val, batch_size=6)


def _fit_tiny_model(loaders: tuple[DataLoader, DataLoader], logger: pl.loggers.Logger, root: Path) -> None:
    """One epoch of a random-init tiny network with metrics and worst-query pictures sent to `logger`."""
    torch.manual_seed(0)
    extractor = ViTExtractor(None, arch="test_efficientnet")
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner(), need_logs=True)
    module = ExtractorModule(extractor, criterion, torch.optim.SGD(extractor.parameters(), lr=1e-3))
    metric = EmbeddingMetrics(  # one per-query metric, so one picture (drawing is the slow part)
        extra_keys=(C.PATHS_KEY,), cmc_top_k=(1,), precision_top_k=(), map_top_k=(), pcf_variance=(), verbose=False
    )
    trainer = pl.Trainer(
        max_epochs=1,
        callbacks=[MetricValCallback(metric, log_images=True, n_worst_queries=1)],
        logger=logger,
        default_root_dir=root,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, *loaders)


def _assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 100, path


def test_mlflow_file_store_gets_curves_and_worst_query_pictures(loaders, tmp_path):
    from mlflow.tracking import MlflowClient

    logger = create_logger("mlflow", str(tmp_path), project="tiny")
    _fit_tiny_model(loaders, logger, tmp_path)

    client = MlflowClient(f"file:{tmp_path / 'mlruns'}")
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    run_folder = tmp_path / "mlruns" / run.info.experiment_id / run.info.run_id
    for curve in CURVES:
        assert (run_folder / "metrics" / curve).is_file(), curve
    assert len(client.get_metric_history(run.info.run_id, "loss_step")) == TRAIN_STEPS
    (cmc,) = client.get_metric_history(run.info.run_id, "OVERALL/cmc/1")
    assert 0 <= cmc.value <= 1
    pictures = list((run_folder / "artifacts" / IMAGE_TAG).glob("step_*.png"))
    assert [picture.name for picture in pictures] == [f"step_{cmc.step}.png"]  # the picture sits at its curve's step
    _assert_png(pictures[0])


def _wandb_history(run_file: Path) -> list[dict[str, Any]]:
    """The history rows of an offline run, parsed from its .wandb log file with W&B's own protobuf messages."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert WANDB_FILE_HEADER.unpack_from(data)[0] == b":W&B"
    position, pending, rows = WANDB_FILE_HEADER.size, b"", []
    while position + WANDB_RECORD_HEADER.size <= len(data):
        left_in_block = WANDB_LOG_BLOCK - position % WANDB_LOG_BLOCK
        _, length, chunk_type = WANDB_RECORD_HEADER.unpack_from(data, position)
        if left_in_block < WANDB_RECORD_HEADER.size or (length, chunk_type) == (0, 0):
            position += left_in_block  # block padding
            continue
        start = position + WANDB_RECORD_HEADER.size
        pending, position = pending + data[start : start + length], start + length
        if chunk_type in WANDB_LAST_CHUNK_TYPES:
            record = wandb_internal_pb2.Record.FromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append(
                    {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in record.history.item}
                )
    return rows


def test_wandb_offline_run_gets_curves_and_worst_query_pictures(loaders, tmp_path):
    import wandb

    logger = create_logger("wandb", str(tmp_path), project="tiny")
    try:
        _fit_tiny_model(loaders, logger, tmp_path)
        run_folder = Path(logger.experiment.dir).parent
        logger.experiment.finish()
    finally:
        wandb.teardown()

    rows = _wandb_history(next(run_folder.glob("*.wandb")))
    logged = {key for row in rows for key in row}
    assert logged >= set(CURVES)
    assert len([row for row in rows if "loss_step" in row]) == TRAIN_STEPS
    (metric_row,) = [row for row in rows if "OVERALL/cmc/1" in row]
    (image_row,) = [row for row in rows if f"{IMAGE_TAG}/filenames" in row]
    assert image_row["trainer/global_step"] == metric_row["trainer/global_step"]
    assert image_row[f"{IMAGE_TAG}/_type"] == "images/separated"
    (picture,) = image_row[f"{IMAGE_TAG}/filenames"]
    _assert_png(run_folder / "files" / picture)


@pytest.mark.parametrize(
    ("kind", "module", "pip_name"), [("wandb", "wandb", "wandb"), ("mlflow", "mlflow", "mlflow-skinny")]
)
def test_missing_package_names_the_pip_command(kind, module, pip_name, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were not installed
    with pytest.raises(
        ImportError, match=f"^The {kind} logger needs the package '{pip_name}': pip install {pip_name}$"
    ):
        create_logger(kind, str(tmp_path))


def test_wandb_online_without_key_says_how_to_log_in_or_go_offline(tmp_path):
    os.environ.pop("WANDB_MODE")
    with pytest.raises(ValueError, match="set WANDB_API_KEY .*or set WANDB_MODE=offline"):
        create_logger("wandb", str(tmp_path))
    (tmp_path / "netrc").write_text("machine api.wandb.ai login user password local-key\n")
    assert isinstance(create_logger("wandb", str(tmp_path)), pl.loggers.WandbLogger)  # `wandb login` is enough


def test_tensorboard_needs_nothing_neptune_and_unknown_loggers_say_what_to_use(tmp_path):
    assert isinstance(create_logger("tensorboard", str(tmp_path)), pl.loggers.TensorBoardLogger)
    with pytest.raises(ValueError, match="Neptune has been shut down.*use one of tensorboard, wandb, mlflow"):
        create_logger("neptune", str(tmp_path))
    with pytest.raises(ValueError, match="Unknown logger 'comet': choose one of tensorboard, wandb, mlflow"):
        create_logger("comet", str(tmp_path))
