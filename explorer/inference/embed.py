"""`inference_on_images`: image files -> [N, D] embeddings, decoding in DataLoader workers under inference mode."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from explorer.data.images import BBox, read_image
from explorer.inference.folding import fold_batch_norms
from explorer.models.transforms import ImageReader, Transform
from explorer.progress import Progress

# Images per forward on the CPU: with the BatchNorms folded, 16 keeps a CNN's activations in cache (EfficientNet-Lite0
# at 224 px, 768 images on 2 cores: 7.1 s at 16, 7.3 s at 8, 9.5 s at 32).
INFERENCE_BATCH_SIZE = 16
FOLD_EXAMPLE_SIZE = 2  # images of the first batch that BatchNorm folding is traced and checked on
PREFETCH_DEPTH = 2  # batches decoded ahead of the model without DataLoader workers

Item = TypeVar("Item")


class ImagesDataset(Dataset):
    """Decoded, cropped and transformed images: the work that DataLoader workers do in parallel."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        transform: Transform,
        bboxes: Sequence[BBox | None] | None = None,
        image_reader: ImageReader = read_image,
    ) -> None:
        if bboxes is not None and len(bboxes) != len(paths):
            raise ValueError(f"{len(bboxes)} bboxes for {len(paths)} paths: give one (or None) per path.")
        self.paths = [str(path) for path in paths]
        self.bboxes = list(bboxes) if bboxes is not None else [None] * len(self.paths)
        self.transform = transform
        self.image_reader = image_reader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.image_reader(self.paths[index], self.bboxes[index]))


@contextlib.contextmanager
def prefetching(items: Iterable[Item], depth: int = PREFETCH_DEPTH) -> Iterator[Iterator[Item]]:
    """An iterator over `items` in order, produced up to `depth` ahead in a thread while the context is open.

    Without DataLoader workers the next batch is then decoded while the model runs on this one (PIL's decoding
    and resizing and torch's kernels release the GIL): about 7 % off embedding the default data on 2 cores,
    without a worker process's start-up and copies. An error while producing is raised by the iterator; leaving
    the context early (an error in the caller's loop) stops the thread.
    """
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def hand_over(item: object, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                ready.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            hand_over(end, error)
            return
        hand_over(end)

    def consume() -> Iterator[Item]:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def inference_on_images(
    model: nn.Module,
    paths: Sequence[str | Path],
    transform: Transform,
    num_workers: int = 0,
    batch_size: int = 8,
    progress: Progress | None = None,
    verbose: bool = False,
    bboxes: Sequence[BBox | None] | None = None,
    image_reader: ImageReader = read_image,
) -> torch.Tensor:
    """Embeddings of `paths` in order, as a float32 CPU tensor [N, D].

    The model runs in eval mode on its own device (its previous mode is restored), with its BatchNorms folded into
    the convolutions before them when there is more than one batch (`fold_batch_norms`); `progress(fraction, message)`
    is called after every batch, `verbose` shows a tqdm bar.
    """
    dataset = ImagesDataset(paths, transform, bboxes, image_reader)
    device = model_device(model)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    was_training = model.training
    model.eval()
    outputs: list[torch.Tensor] = []
    done = 0
    forward: nn.Module | None = None
    try:
        with prefetching(loader) if num_workers == 0 else contextlib.nullcontext(loader) as batches:
            for images in tqdm(batches, total=len(loader), desc="Embedding images", disable=not verbose):
                images = images.to(device, non_blocking=True)
                if forward is None:  # folding pays for itself over a few batches, not for one
                    forward = fold_batch_norms(model, images[:FOLD_EXAMPLE_SIZE]) if len(loader) > 1 else model
                with torch.inference_mode():
                    outputs.append(forward(images).float().cpu())
                done += len(images)
                if progress is not None:
                    progress(done / len(dataset), f"Embedded {done}/{len(dataset)} images")
    finally:
        model.train(was_training)
    if not outputs:
        return torch.empty(0, int(getattr(model, "feat_dim", 0)))
    return torch.cat(outputs)  # outside inference mode: an ordinary tensor, usable in autograd code later
