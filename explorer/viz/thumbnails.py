"""Square thumbnails of (optionally cropped) images, cached: a retrieval picture reads each file once.

The cache key holds the file's modification time and size, so a regenerated image gets a fresh thumbnail. Hover
thumbnails of the embedding plot are small WebP images, encoded once and kept in memory, which a page fetches one at
a time by an opaque token and an item id (`register_items`, `hover_thumbnail`): never by a path, so the app still
serves no file from disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

from explorer.data.images import BBox, ImageReadError, read_image

BACKGROUND = (255, 255, 255)
PLACEHOLDER = (225, 225, 225)


def load_thumbnail(path: str, bbox: BBox | None, size: int) -> Image.Image:
    """RGB `size` x `size` thumbnail, aspect kept on white; a labelled grey tile if the file cannot be read.

    The cached image is shared: callers must not modify it in place.
    """
    return cached_thumbnail(path, bbox, size, _version(path))


def _version(path: str) -> tuple[int, int] | None:
    """(modification time in ns, size in bytes) of the file; None when it is missing (read as unreadable)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4096)
def cached_thumbnail(path: str, bbox: BBox | None, size: int, version: tuple[int, int] | None) -> Image.Image:
    """`load_thumbnail` of one version (modification time in ns, size in bytes) of the file."""
    try:
        image = read_image(path, bbox)
    except ImageReadError:
        tile = Image.new("RGB", (size, size), PLACEHOLDER)
        ImageDraw.Draw(tile).text((size // 2, size // 2), "unreadable", fill=(90, 90, 90), anchor="mm")
        return tile
    image = ImageOps.contain(image, (size, size))
    tile = Image.new("RGB", (size, size), BACKGROUND)
    tile.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return tile


HOVER_SIZE = 128  # pixels of the thumbnail a hovered projection point shows
MAX_REGISTERED_DATASETS = 64  # item lists a page may still ask hover thumbnails of (oldest forgotten first)
_SALT = secrets.token_bytes(16)  # per process: a token never tells which files it stands for
_registered: OrderedDict[str, tuple[tuple[str, ...], tuple[BBox | None, ...]]] = OrderedDict()
_registered_lock = threading.Lock()


def register_items(paths: Sequence[str], bboxes: Sequence[BBox | None]) -> str:
    """An opaque token standing for these items: a page sends it back with an item id to get that item's hover
    thumbnail (`hover_thumbnail`), so no file path ever reaches the page.

    The same (immutable) tuples registered again, as every figure of one dataset does, get their token back
    without hashing every path again."""
    with _registered_lock:
        for token, (known_paths, known_bboxes) in _registered.items():
            if known_paths is paths and known_bboxes is bboxes:
                _registered.move_to_end(token)
                return token
    if not (isinstance(paths, tuple) and all(isinstance(path, str) for path in paths)):
        paths = tuple(map(str, paths))
    bboxes = bboxes if isinstance(bboxes, tuple) else tuple(bboxes)
    digest = hashlib.sha256(_SALT)
    digest.update("\n".join(paths).encode())
    digest.update(repr(bboxes).encode())
    token = digest.hexdigest()[:32]
    with _registered_lock:
        _registered[token] = (paths, bboxes)
        _registered.move_to_end(token)
        while len(_registered) > MAX_REGISTERED_DATASETS:
            _registered.popitem(last=False)
    return token


def hover_thumbnail(token: object, item_id: object) -> str | None:
    """A `data:image/webp` URI of item `item_id` of the items `token` stands for; None for an unknown token or an
    item id out of range (what a page sends is not trusted)."""
    with _registered_lock:
        items = _registered.get(token) if isinstance(token, str) else None
    if items is None or isinstance(item_id, bool) or not isinstance(item_id, int):
        return None
    paths, bboxes = items
    if not 0 <= item_id < len(paths):
        return None
    path = paths[item_id]
    encoded = _encoded_thumbnail(path, bboxes[item_id], _version(path))
    return "data:image/webp;base64," + base64.b64encode(encoded).decode()


@lru_cache(maxsize=16384)  # ~3 KB each: at most ~50 MB, and each file version is read once
def _encoded_thumbnail(path: str, bbox: BBox | None, version: tuple[int, int] | None) -> bytes:
    buffer = io.BytesIO()
    cached_thumbnail(path, bbox, HOVER_SIZE, version).save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()
