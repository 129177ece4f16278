"""Reading images the same way everywhere: training, validation, pictures and search.

Every reader of the project goes through `read_image`, so EXIF rotation, colour conversion, bbox crops
and the decompression-bomb guard are applied once and identically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from explorer.const import MAX_IMAGE_PIXELS
from explorer.errors import InputError

BBox = tuple[int, int, int, int]  # (x_1, y_1, x_2, y_2), PIL crop order


class ImageReadError(InputError):
    """An image file that cannot be used: missing, corrupt, truncated or too large."""


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composed onto white, 16-bit is rescaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        grey = np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _check_size(image: Image.Image, path: Path) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageReadError(
            f"Image {path} is {width}x{height} = {width * height:,} pixels, above the limit of "
            f"{MAX_IMAGE_PIXELS:,} (a guard against decompression bombs). Resize it before using it."
        )


def read_image(path: str | Path, bbox: BBox | None = None) -> Image.Image:
    """Open an image as RGB with EXIF orientation applied, cropped to `bbox` when given.

    Raises `ImageReadError` naming the file for anything that is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"Image file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                _check_size(opened, path)
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageReadError(f"Image {path} is too large (decompression-bomb guard): {error}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(
            f"Cannot read image {path}: it is corrupt, truncated or not an image ({error})."
        ) from error
    image = _to_rgb(image)
    if bbox is not None:
        image = crop_to_bbox(image, bbox, path)
    return image


def crop_to_bbox(image: Image.Image, bbox: BBox, path: str | Path = "<image>") -> Image.Image:
    """Crop to (x_1, y_1, x_2, y_2); a box outside the image is an error, not a silent black crop."""
    x1, y1, x2, y2 = (int(v) for v in bbox)
    width, height = image.size
    if not (0 <= x1 < x2 and 0 <= y1 < y2):
        raise ImageReadError(f"Bounding box {bbox} of {path} is invalid: need 0 <= x_1 < x_2 and 0 <= y_1 < y_2.")
    if x1 >= width or y1 >= height:
        raise ImageReadError(f"Bounding box {bbox} of {path} lies outside the {width}x{height} image.")
    return image.crop((x1, y1, min(x2, width), min(y2, height)))


def typical_image_side(paths: list[str], sample: int = 64, multiple: int = 32) -> int | None:
    """The median shorter side of up to `sample` images spread over `paths` (headers only, nothing decoded),
    rounded up to a multiple of `multiple`; None when none can be read. Training above it only upsamples."""
    if not paths:
        return None
    picked = [paths[i] for i in np.linspace(0, len(paths) - 1, min(sample, len(paths))).astype(int)]
    sides = []
    for path in picked:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except (OSError, ValueError):  # unreadable files get their own message when they are read for real
            continue
    if not sides:
        return None
    return int(-(-np.median(sides) // multiple) * multiple)
