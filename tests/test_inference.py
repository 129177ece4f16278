"""`inference_on_images` and the embeddings cache."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.data import read_image
from explorer.inference import EmbeddingsCache, inference_on_images
from explorer.inference.embed import prefetching
from explorer.models import ViTExtractor
from explorer.models.transforms import ImageConfig, eval_transform

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never wait on the Hugging Face hub

CONFIG = ImageConfig(input_size=32, mean=(0.5,) * 3, std=(0.5,) * 3)


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(11):
        path = tmp_path / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ViTExtractor(None, arch="test_efficientnet")


def _direct(model, paths, transform, bboxes=None):
    bboxes = bboxes or [None] * len(paths)
    batch = torch.stack([transform(read_image(p, b)) for p, b in zip(paths, bboxes, strict=True)])
    model.eval()
    with torch.no_grad():
        return model(batch)


def test_inference_matches_a_direct_forward_in_order(model, images):
    transform = eval_transform(CONFIG)
    model.train()
    calls = []
    embeddings = inference_on_images(model, images, transform, batch_size=4, progress=lambda f, m: calls.append(f))
    assert model.training  # mode restored
    assert embeddings.shape == (11, model.feat_dim) and not embeddings.requires_grad
    torch.testing.assert_close(embeddings, _direct(model, images, transform))
    assert calls == pytest.approx([4 / 11, 8 / 11, 1.0])


def test_inference_with_worker_processes_gives_the_same_embeddings(model, images):
    transform = eval_transform(CONFIG)
    single = inference_on_images(model, images, transform, num_workers=0, batch_size=8)
    workers = inference_on_images(model, images, transform, num_workers=2, batch_size=8)
    torch.testing.assert_close(single, workers)


def test_inference_crops_to_bboxes(model, images):
    transform = eval_transform(CONFIG)
    bboxes = [(0, 0, 20, 20)] * 3
    cropped = inference_on_images(model, images[:3], transform, bboxes=bboxes)
    torch.testing.assert_close(cropped, _direct(model, images[:3], transform, bboxes))


def test_inference_on_no_images_returns_an_empty_matrix(model):
    assert inference_on_images(model, [], eval_transform(CONFIG)).shape == (0, model.feat_dim)


def test_prefetching_yields_every_item_in_order_from_another_thread():
    producers = []

    def items():
        for i in range(7):
            producers.append(threading.current_thread())
            yield i

    with prefetching(items(), depth=2) as ahead:
        assert list(ahead) == list(range(7))
    assert all(thread is not threading.current_thread() for thread in producers)


def test_prefetching_raises_the_producers_error_after_the_items_before_it():
    def items():
        yield 1
        raise OSError("cannot read img_3.png")

    got = []
    with pytest.raises(OSError, match="img_3.png"):
        with prefetching(items()) as ahead:
            got.extend(ahead)
    assert got == [1]


def test_leaving_prefetching_early_stops_its_thread():
    produced = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    with pytest.raises(RuntimeError, match="stop"):
        with prefetching(endless(), depth=2) as ahead:
            next(ahead)
            raise RuntimeError("stop")
    assert not any(thread.name == "prefetch" for thread in threading.enumerate())
    assert len(produced) <= 4  # the item handed over, at most `depth` queued, one being handed over


def test_inference_reports_an_unreadable_image_and_restores_the_mode(model, images):
    images[5].write_bytes(b"not a png")
    model.train()
    with pytest.raises(Exception, match="img_5"):
        inference_on_images(model, images, eval_transform(CONFIG), batch_size=4)
    assert model.training


def test_cache_computes_once_then_reads_back(model, images, tmp_path):
    transform = eval_transform(CONFIG)
    cache = EmbeddingsCache(tmp_path / "cache")
    first = cache.embed(model, images, transform)
    assert cache.computed_last_call == 11
    again = EmbeddingsCache(tmp_path / "cache").embed(model, images[::-1], transform)  # a new process, other order
    torch.testing.assert_close(again, first.flip(0))
    reopened = EmbeddingsCache(tmp_path / "cache")
    reopened.embed(model, images, transform)
    assert reopened.computed_last_call == 0


def test_cache_recomputes_only_changed_files(model, images, tmp_path):
    transform = eval_transform(CONFIG)
    cache = EmbeddingsCache(tmp_path / "cache")
    cache.embed(model, images, transform)
    Image.new("RGB", (30, 30), (255, 0, 0)).save(images[2])
    stat = images[2].stat()
    os.utime(images[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    updated = cache.embed(model, images, transform)
    assert cache.computed_last_call == 1
    torch.testing.assert_close(updated, _direct(model, images, transform))


def test_cache_is_keyed_by_weights_and_transform(images, tmp_path):
    model = ViTExtractor(None, arch="test_efficientnet")
    transform = eval_transform(CONFIG)
    cache = EmbeddingsCache(tmp_path / "cache")
    cache.embed(model, images, transform)
    cache.embed(model, images, eval_transform(CONFIG.with_size(48)))
    assert cache.computed_last_call == 11
    with torch.no_grad():
        next(model.parameters()).add_(0.1)  # a training step changes weights in place
    updated = cache.embed(model, images, transform)
    assert cache.computed_last_call == 11
    torch.testing.assert_close(updated, _direct(model, images, transform))


def test_distributed_embedding_on_two_processes_equals_one_process(model, images):
    """DDP splits (and may pad) the 11 images across 2 processes; gathering by index must undo that."""
    from explorer.inference.distributed import distributed_inference_on_images

    transform = eval_transform(CONFIG)
    bboxes = [None, (1, 2, 30, 20)] + [None] * 9
    single = inference_on_images(model, images, transform, batch_size=3, bboxes=bboxes)
    spread = distributed_inference_on_images(
        model, images, transform, bboxes, batch_size=3, devices=2, accelerator="cpu", strategy="ddp_spawn"
    )
    torch.testing.assert_close(spread, single)
