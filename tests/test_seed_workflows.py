"""The user's four OML workflows (/work/shared/seed/oml-study.md) with the seed's own calls.

Only the imports differ, and the extractor is the offline pretrained preset instead of a download of
"vits16_dino" (the seed's `ViTExtractor("vits16_dino", arch="vits16", ...)` fails offline by design).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import lightning.pytorch as pl  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tqdm import tqdm  # noqa: E402

from explorer import (  # noqa: E402
    MOCK_DATASET_PATH,
    AllTripletsMiner,
    BalanceSampler,
    DatasetQueryGallery,
    DatasetWithLabels,
    EmbeddingMetrics,
    ExtractorModule,
    MetricValCallback,
    TripletLossWithMiner,
    ViTExtractor,
    download_mock_dataset,
    get_transforms_for_pretrained,
    inference_on_images,
    pairwise_dist,
)

PRESET = "efficientnet_lite0_imagenet"  # offline stand-in for the seed's "vits16_dino"
ARCH = "efficientnet_lite0"


@pytest.fixture(autouse=True)
def in_tmp_folder(tmp_path, monkeypatch):
    """The seed writes "mock_dataset/" and TensorBoard logs to the working folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)


def test_workflow_1_training_loop_with_logs(capsys):
    dataset_root = "mock_dataset/"
    df_train, _ = download_mock_dataset(dataset_root)
    model = ViTExtractor(PRESET, arch=ARCH, normalise_features=False).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    train_dataset = DatasetWithLabels(df_train, dataset_root=dataset_root)
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner(), need_logs=True)
    sampler = BalanceSampler(train_dataset.get_labels(), n_labels=2, n_instances=2)
    print(sampler.lbl2idx)
    print(sampler.batch_size)
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_sampler=sampler)
    before = model.model.conv_head.weight.detach().clone()

    for batch in tqdm(train_loader):
        embeddings = model(batch["input_tensors"])
        loss = criterion(embeddings, batch["labels"])
        print("\n", batch["input_tensors"], "\n", batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        # info for logging: positive/negative distances, number of active triplets
        print(criterion.last_logs)

    assert sampler.batch_size == 4 and len(sampler.lbl2idx) == 4 and len(train_loader) == 2
    assert set(criterion.last_logs) == {"active_tri", "pos_dist", "neg_dist"}
    assert not torch.equal(before, model.model.conv_head.weight)
    assert "active_tri" in capsys.readouterr().out


def test_workflow_2_validation_with_embedding_metrics_and_plots():
    dataset_root = "mock_dataset/"
    _, df_val = download_mock_dataset(dataset_root)
    model = ViTExtractor(PRESET, arch=ARCH, normalise_features=False).eval()
    val_dataset = DatasetQueryGallery(df_val, dataset_root=dataset_root)
    val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=4)
    calculator = EmbeddingMetrics(
        extra_keys=[
            "paths",
        ]
    )
    calculator.setup(num_samples=len(val_dataset))

    with torch.no_grad():
        for batch in tqdm(val_loader):
            batch["embeddings"] = model(batch["input_tensors"])
            calculator.update_data(batch)

    print(calculator.metrics)  # metrics
    print(calculator.metrics_unreduced)  # metrics without averaging over queries

    print("Draw predictions for predefined queries")
    figure = calculator.get_plot_for_queries(query_ids=[2, 1], n_instances=5, verbose=False)
    plt.show()
    print("Draw the queries worst by map@5")
    worst = calculator.get_plot_for_worst_queries(
        metric_name="OVERALL/map/5", n_queries=2, n_instances=5, verbose=False
    )
    plt.show()
    calculator.get_plot_for_queries(query_ids=[0, 1, 2, 3], n_instances=8, verbose=False)

    assert 0 <= calculator.metrics["OVERALL"]["cmc"][5] <= 1
    assert len(calculator.metrics_unreduced["OVERALL"]["map"][5]) == 4  # one value per query
    assert figure is not None and worst is not None
    plt.close("all")


def test_workflow_3_lightning_fit_logs_metrics_and_images_to_tensorboard():
    dataset_root = "mock_dataset/"
    df_train, df_val = download_mock_dataset(dataset_root)
    model = ViTExtractor(PRESET, arch=ARCH, normalise_features=False).train()
    plt.ioff()

    # train
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    train_dataset = DatasetWithLabels(df_train, dataset_root=dataset_root)
    criterion = TripletLossWithMiner(margin=0.1, miner=AllTripletsMiner())
    batch_sampler = BalanceSampler(train_dataset.get_labels(), n_labels=2, n_instances=3)
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_sampler=batch_sampler)

    # val
    val_dataset = DatasetQueryGallery(df_val, dataset_root=dataset_root)
    val_loader = torch.utils.data.DataLoader(val_dataset, batch_size=4)
    metric_callback = MetricValCallback(
        metric=EmbeddingMetrics(
            extra_keys=[
                "paths",
            ]
        ),
        log_images=True,
    )

    logger = TensorBoardLogger(".")
    pl_model = ExtractorModule(model, criterion, optimizer)
    trainer = pl.Trainer(max_epochs=3, callbacks=[metric_callback], num_sanity_val_steps=0, logger=logger)
    trainer.fit(pl_model, train_dataloaders=train_loader, val_dataloaders=val_loader)

    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars, images = events.Tags()["scalars"], events.Tags()["images"]
    for tag in ("OVERALL/cmc/5", "OVERALL/map/5", "OVERALL/precision/5", "loss_epoch"):
        assert tag in scalars, (tag, scalars)
    assert len(events.Scalars("OVERALL/cmc/5")) == 3  # one per validation epoch
    assert "worst_queries/OVERALL/map/5" in images


def test_workflow_4_retrieval_with_a_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dataset_root = "mock_dataset/"  # the seed's earlier cell; its retrieval cell then reads from MOCK_DATASET_PATH
    _, df_val = download_mock_dataset(dataset_root)
    model = ViTExtractor(PRESET, arch=ARCH, normalise_features=False).eval()

    df_val["path"] = df_val["path"].apply(lambda x: MOCK_DATASET_PATH / x)
    queries = df_val[df_val["is_query"]]["path"].tolist()
    galleries = df_val[df_val["is_gallery"]]["path"].tolist()
    transform, _ = get_transforms_for_pretrained("vits16_dino")
    args = {"num_workers": 0, "batch_size": 8}
    features_queries = inference_on_images(model, paths=queries, transform=transform, **args)
    features_galleries = inference_on_images(model, paths=galleries, transform=transform, **args)
    dist_mat = pairwise_dist(x1=features_queries, x2=features_galleries)
    ii_closest = torch.argmin(dist_mat, dim=1)

    assert features_queries.shape == (4, model.feat_dim) and features_galleries.shape == (8, model.feat_dim)
    assert dist_mat.shape == (4, 8)
    torch.testing.assert_close(ii_closest, torch.cdist(features_queries, features_galleries).argmin(dim=1))
