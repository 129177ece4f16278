"""Square thumbnails of (optionally cropped) images, cached: a retrieval picture reads each file once.

The cache key holds the file's modification time and size, so a regenerated image gets a fresh thumbnail.
"""

from __future__ import annotations

import os
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

from explorer.data.images import BBox, ImageReadError, read_image

BACKGROUND = (255, 255, 255)
PLACEHOLDER = (225, 225, 225)


def load_thumbnail(path: str, bbox: BBox | None, size: int) -> Image.Image:
    """RGB `size` x `size` thumbnail, aspect kept on white; a labelled grey tile if the file cannot be read.

    The cached image is shared: callers must not modify it in place.
    """
    try:
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:  # missing file: read_image reports it as unreadable
        version = None
    return cached_thumbnail(path, bbox, size, version)


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
