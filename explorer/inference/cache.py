"""Embeddings cache: reopening a dataset with the same model and pre-processing does not recompute anything.

An entry is keyed by the model (a fingerprint of its weights, architecture and pre-processing) and by the image
file (absolute path, size, modification time, crop box), so an edited image or a retrained model is recomputed
while everything else is read back. One safetensors file per model key; updates are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import weakref
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from explorer.const import CACHE_ROOT
from explorer.data.images import BBox
from explorer.inference.embed import inference_on_images
from explorer.models.transforms import Transform
from explorer.progress import Progress

DEFAULT_CACHE_DIR = CACHE_ROOT / "embeddings"
_fingerprints: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()


def weights_fingerprint(model: nn.Module) -> str:
    """Hash of the model's structure and every parameter/buffer; re-hashed only after tensors change in place."""
    tensors = list(model.state_dict(keep_vars=True).items())
    versions = tuple((name, id(tensor), tensor._version) for name, tensor in tensors)
    known = _fingerprints.get(model)
    if known is not None and known[0] == versions:
        return known[1]
    digest = hashlib.sha1(repr(model).encode())
    for name, tensor in tensors:
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().data)
    _fingerprints[model] = (versions, digest.hexdigest())
    return digest.hexdigest()


def file_key(path: str | Path, bbox: BBox | None = None) -> str:
    """Identity of an image file as it is now: absolute path, size, modification time (ns), crop box."""
    path = Path(path).resolve()
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{bbox}"


class EmbeddingsCache:
    """Disk cache of per-image embeddings for one (model, transform) at a time."""

    def __init__(self, cache_dir: str | Path = DEFAULT_CACHE_DIR) -> None:
        self.cache_dir = Path(cache_dir)
        self.computed_last_call = 0  # how many images the last `embed` had to run through the model

    def _model_key(self, model: nn.Module, transform: Transform) -> str:
        return hashlib.sha1(f"{weights_fingerprint(model)}|{transform!r}".encode()).hexdigest()

    def _read(self, file: Path) -> dict[str, torch.Tensor]:
        try:
            with safe_open(str(file), framework="pt") as opened:
                keys = json.loads(opened.metadata()["keys"])
                embeddings = opened.get_tensor("embeddings")
        except (FileNotFoundError, SafetensorError, KeyError, json.JSONDecodeError):
            return {}  # no cache yet, or a damaged one: recompute
        return dict(zip(keys, embeddings, strict=True))

    def _write(self, file: Path, entries: dict[str, torch.Tensor]) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        temporary = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
        try:
            save_file(
                {"embeddings": torch.stack(list(entries.values())).contiguous()},
                str(temporary),
                metadata={"keys": json.dumps(list(entries))},
            )
            os.replace(temporary, file)
        finally:
            temporary.unlink(missing_ok=True)

    def embed(
        self,
        model: nn.Module,
        paths: Sequence[str | Path],
        transform: Transform,
        bboxes: Sequence[BBox | None] | None = None,
        num_workers: int = 0,
        batch_size: int = 8,
        progress: Progress | None = None,
    ) -> torch.Tensor:
        """Like `inference_on_images`, but only images not seen with this model and transform are computed."""
        bboxes = list(bboxes) if bboxes is not None else [None] * len(paths)
        keys = [file_key(path, bbox) for path, bbox in zip(paths, bboxes, strict=True)]
        file = self.cache_dir / f"{self._model_key(model, transform)}.safetensors"
        entries = self._read(file)
        first_row: dict[str, int] = {}
        for row, key in enumerate(keys):
            first_row.setdefault(key, row)
        rows = [row for key, row in first_row.items() if key not in entries]
        self.computed_last_call = len(rows)
        if rows:
            computed = inference_on_images(
                model,
                [paths[row] for row in rows],
                transform,
                num_workers=num_workers,
                batch_size=batch_size,
                progress=progress,
                bboxes=[bboxes[row] for row in rows],
            )
            entries.update(zip([keys[row] for row in rows], computed, strict=True))
            self._write(file, entries)
        elif progress is not None:
            progress(1.0, f"Read {len(keys)} embeddings from the cache")
        return torch.stack([entries[key] for key in keys]) if keys else torch.empty(0, 0)
