"""Embedding on several devices or nodes: a Lightning `predict` whose per-process results are put back in order.

Every process embeds its share of the images (Lightning's distributed sampler); at the end of the epoch the
(dataset index, embedding) pairs of all processes are gathered on global rank 0, placed by index, and handed to
the launching process through a file, so the result is the single-process one, in the order of `paths`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from explorer.data.images import BBox
from explorer.inference.embed import FOLD_EXAMPLE_SIZE, ImagesDataset
from explorer.inference.folding import fold_batch_norms
from explorer.models.transforms import Transform

GATHERED_FILE = "embeddings.pt"


class IndexedImages(Dataset):
    """`ImagesDataset` items with their position, so gathered batches can be put back in order."""

    def __init__(self, images: ImagesDataset) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[int, Tensor]:
        return index, self.images[index]


class EmbeddingPredictor(pl.LightningModule):
    """`predict_step` of an extractor: (dataset indices, float32 embeddings) of one batch."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor
        self._forward: nn.Module | None = None  # the extractor with its BatchNorms folded, as in one process

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> Any:
        indices, images = batch
        if self._forward is None:
            with torch.inference_mode(False):
                self._forward = fold_batch_norms(self.extractor.eval(), images[:FOLD_EXAMPLE_SIZE].clone())
        return indices.cpu(), self._forward(images).float().cpu()


class GatheredEmbeddingsWriter(BasePredictionWriter):
    """Gathers every process's predictions on global rank 0 and writes them, in dataset order, to `folder`."""

    def __init__(self, folder: Path, n_items: int) -> None:
        super().__init__(write_interval="epoch")
        self.folder, self.n_items = folder, n_items

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Sequence[Any], batch_indices: Any
    ) -> None:
        local = [(indices, embeddings) for indices, embeddings in predictions]
        per_process: list[Any] = [local]
        if trainer.world_size > 1:
            per_process = [None] * trainer.world_size
            torch.distributed.all_gather_object(per_process, local)
        if trainer.is_global_zero:
            torch.save(
                ordered_by_index([batch for batches in per_process for batch in batches], self.n_items),
                self.folder / GATHERED_FILE,
            )


def ordered_by_index(batches: Sequence[tuple[Tensor, Tensor]], n_items: int) -> Tensor:
    """[n_items, D] embeddings placed by dataset index (padding duplicates overwrite equal rows); every index
    must be present."""
    dim = batches[0][1].shape[1]
    out = torch.empty(n_items, dim, dtype=torch.float32)
    filled = torch.zeros(n_items, dtype=torch.bool)
    for indices, embeddings in batches:
        out[indices] = embeddings
        filled[indices] = True
    if not filled.all():
        raise RuntimeError(f"Distributed embedding lost {int((~filled).sum())} of {n_items} items.")
    return out


def distributed_inference_on_images(
    model: nn.Module,
    paths: Sequence[str | Path],
    transform: Transform,
    bboxes: Sequence[BBox | None] | None = None,
    batch_size: int = 8,
    num_workers: int = 0,
    devices: int | str = "auto",
    accelerator: str = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
) -> Tensor | None:
    """`inference_on_images` as a Lightning predict over `devices` x `num_nodes` processes (e.g. DDP): the same
    float32 CPU tensor [N, D] in the order of `paths`, returned in the process of global rank 0; None in the
    others (the copies of the command that strategy="ddp" starts), which must not write anything."""
    dataset = IndexedImages(ImagesDataset(paths, transform, bboxes))
    if len(dataset) == 0:
        return torch.empty(0, int(getattr(model, "feat_dim", 0)))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    with tempfile.TemporaryDirectory(prefix="explorer_embed_") as folder:
        trainer = pl.Trainer(
            devices=devices,
            accelerator=accelerator,
            strategy=strategy,
            num_nodes=num_nodes,
            callbacks=[GatheredEmbeddingsWriter(Path(folder), len(dataset))],
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=True,
            default_root_dir=folder,
        )
        was_training = model.training
        try:
            trainer.predict(EmbeddingPredictor(model), loader, return_predictions=False)
        finally:
            model.train(was_training)
        return torch.load(Path(folder) / GATHERED_FILE) if trainer.is_global_zero else None
