"""Embedding images with an extractor: batched, multi-worker inference and a disk cache of the results."""

from explorer.inference.cache import EmbeddingsCache, weights_fingerprint
from explorer.inference.embed import ImagesDataset, inference_on_images

__all__ = ["EmbeddingsCache", "ImagesDataset", "inference_on_images", "weights_fingerprint"]
