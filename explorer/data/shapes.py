"""Built-in generated data: figures drawn with Pillow, written as JPEGs plus an OML `df.csv`.

The mock version mirrors OML's mock dataset (8 figures x 3 images, 4 labels train / 4 validation, one query and
two gallery images per validation label). The larger version is the app's embedded default: a class is a figure
*and* a fill pattern, while colour, scale, rotation, position, background and noise vary inside a class, so an
extractor must learn shape and texture, not colour, to retrieve well. Two or three smaller distractor figures
of other kinds and a textured gradient background make off-the-shelf ImageNet features retrieve poorly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from explorer import const as C
from explorer.errors import InputError
from explorer.progress import Progress

FIGURES = ("rectangle", "circle", "triangle", "cross", "equal", "hat", "sign", "star")
PATTERNS = ("solid", "outline", "stripes", "dots", "checker", "halves")
CSV_NAME = "df.csv"

Points = list[tuple[float, float]]


def _regular(n: int, radius: float, phase: float = -math.pi / 2) -> Points:
    return [
        (radius * math.cos(phase + 2 * math.pi * i / n), radius * math.sin(phase + 2 * math.pi * i / n))
        for i in range(n)
    ]


def _star() -> Points:
    outer, inner = _regular(5, 1.0), _regular(5, 0.42, -math.pi / 2 + math.pi / 5)
    return [p for pair in zip(outer, inner, strict=True) for p in pair]


def _box(x0: float, y0: float, x1: float, y1: float) -> Points:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# Each figure is a list of polygons in the unit square [-1, 1]^2 (the circle is a 48-gon).
FIGURE_POLYGONS: dict[str, list[Points]] = {
    "rectangle": [_box(-0.9, -0.55, 0.9, 0.55)],
    "circle": [_regular(48, 0.9)],
    "triangle": [_regular(3, 1.0)],
    "cross": [_box(-0.25, -0.9, 0.25, 0.9), _box(-0.9, -0.25, 0.9, 0.25)],
    "equal": [_box(-0.85, -0.6, 0.85, -0.15), _box(-0.85, 0.15, 0.85, 0.6)],
    "hat": [[(-0.9, 0.5), (0.0, -0.6), (0.9, 0.5), (0.55, 0.5), (0.0, -0.1), (-0.55, 0.5)]],
    "sign": [_box(-0.2, -0.9, 0.2, 0.9), [(-0.9, -0.9), (0.9, -0.9), (0.0, -0.2)]],
    "star": [_star()],
}


def _transform(polygons: list[Points], center: tuple[float, float], scale: float, angle: float) -> list[Points]:
    cos, sin = math.cos(angle), math.sin(angle)
    return [
        [(center[0] + scale * (x * cos - y * sin), center[1] + scale * (x * sin + y * cos)) for x, y in poly]
        for poly in polygons
    ]


def _texture(pattern: str, size: int, color: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    """The fill of a figure: an RGB image; the figure's mask decides where it shows."""
    second = tuple(int(c * 0.35) for c in color)
    texture = Image.new("RGB", (size, size), color)
    draw = ImageDraw.Draw(texture)
    step = max(4, size // 12)
    offset = int(rng.integers(0, step))
    if pattern == "stripes":
        for x in range(-size + offset, size * 2, step):
            draw.line([(x, 0), (x + size, size)], fill=second, width=max(2, step // 3))
    elif pattern == "dots":
        for y in range(offset, size, step):
            for x in range(offset, size, step):
                draw.ellipse([x - step / 4, y - step / 4, x + step / 4, y + step / 4], fill=second)
    elif pattern == "checker":
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=second)
    elif pattern == "halves":
        draw.rectangle([0, size // 2, size, size], fill=second)
    return texture


# The default set's nuisances: smaller figures of other kinds around the class figure, and a textured gradient
# background, so that off-the-shelf ImageNet features retrieve poorly and training has something to learn.
FIGURE_SCALE = (0.22, 0.4)  # of the image size
DISTRACTORS = (2, 3)  # how many, inclusive
DISTRACTOR_SCALE = (0.1, 0.18)


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _contrasting(color: tuple[int, int, int], background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Push each channel of `color` away from `background` so the figure stays visible."""
    return tuple(int((c + 128) % 256) if abs(c - b) < 80 else c for c, b in zip(color, background, strict=True))


def _mask(polygons: list[Points], image_size: int, pattern: str) -> Image.Image:
    mask = Image.new("L", (image_size, image_size), 0)
    mask_draw = ImageDraw.Draw(mask)
    for polygon in polygons:
        mask_draw.polygon(polygon, fill=255)
    if pattern == "outline":
        inner = mask.filter(ImageFilter.MinFilter(2 * max(1, image_size // 40) + 1))
        mask = Image.fromarray(np.asarray(mask) & ~np.asarray(inner))
    return mask


def _background(image_size: int, rng: np.random.Generator) -> tuple[Image.Image, tuple[int, int, int]]:
    """A two-colour gradient, half the time overlaid with a faint pattern; returns it and its main colour."""
    base = _random_color(rng)
    other = tuple(int(np.clip(c + rng.integers(-70, 71), 0, 255)) for c in base)
    t = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = np.clip(0.5 + (t[None, :] - 0.5) * math.cos(angle) + (t[:, None] - 0.5) * math.sin(angle), 0, 1)
    pixels = np.asarray(base, np.float32) * (1 - ramp[..., None]) + np.asarray(other, np.float32) * ramp[..., None]
    image = Image.fromarray(pixels.astype(np.uint8))
    if rng.random() < 0.5:  # a faint texture of one of the patterns, so texture alone does not name the class
        faint = tuple(int(np.clip(c + rng.integers(-45, 46), 0, 255)) for c in base)
        texture = _texture(str(rng.choice(PATTERNS[2:])), image_size, faint, rng)
        image = Image.blend(image, texture, 0.35)
    return image, base


def _paste_figure(
    image: Image.Image,
    figure: str,
    pattern: str,
    scale_range: tuple[float, float],
    background: tuple[int, int, int],
    rng: np.random.Generator,
) -> None:
    """Draw `figure` filled with `pattern` at a random colour, scale, rotation and position (fully inside)."""
    image_size = image.width
    color = _contrasting(_random_color(rng), background)
    scale = image_size * float(rng.uniform(*scale_range))
    margin = scale * 1.05
    center = (float(rng.uniform(margin, image_size - margin)), float(rng.uniform(margin, image_size - margin)))
    angle = float(rng.uniform(-math.pi / 5, math.pi / 5))
    polygons = _transform(FIGURE_POLYGONS[figure], center, scale, angle)
    image.paste(_texture(pattern, image_size, color, rng), mask=_mask(polygons, image_size, pattern))


def draw_figure(
    figure: str, pattern: str, image_size: int, rng: np.random.Generator, cluttered: bool = False
) -> Image.Image:
    """One image of `figure` filled with `pattern`, with random colour, pose, background and noise.

    `cluttered` (the default set) adds distractor figures of other kinds and a textured gradient background.
    """
    if cluttered:
        image, background = _background(image_size, rng)
        others = [f for f in FIGURES if f != figure]
        for _ in range(int(rng.integers(DISTRACTORS[0], DISTRACTORS[1] + 1))):
            _paste_figure(image, str(rng.choice(others)), str(rng.choice(PATTERNS)), DISTRACTOR_SCALE, background, rng)
    else:
        background = _random_color(rng)
        image = Image.new("RGB", (image_size, image_size), background)
    _paste_figure(image, figure, pattern, FIGURE_SCALE, background, rng)
    noise = rng.normal(0.0, float(rng.uniform(4, 14)), (image_size, image_size, 3))
    image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    return image


def _write_dataset(
    root: Path,
    classes: list[tuple[str, str]],
    images_per_class: int,
    image_size: int,
    seed: int,
    with_category: bool,
    cluttered: bool,
    query_gallery: Callable[[int], tuple[bool, bool]],
    progress: Progress | None,
) -> pd.DataFrame:
    """Draw every class, split the classes half/half (train first), write images and df.csv."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    n_train = len(classes) // 2
    rows = []
    for label, (figure, pattern) in enumerate(classes):
        rng = np.random.default_rng([seed, label])
        is_train = label < n_train
        for index in range(images_per_class):
            name = f"{figure}_{pattern}_{index}.jpg" if with_category else f"{figure}_{index}.jpg"
            draw_figure(figure, pattern, image_size, rng, cluttered).save(root / "images" / name, quality=92)
            is_query, is_gallery = (None, None) if is_train else query_gallery(index)
            row = {
                C.LABELS_COLUMN: label,
                C.PATHS_COLUMN: f"images/{name}",
                C.SPLIT_COLUMN: C.TRAIN_SPLIT if is_train else C.VALIDATION_SPLIT,
                C.IS_QUERY_COLUMN: is_query,
                C.IS_GALLERY_COLUMN: is_gallery,
            }
            if with_category:  # the default set names its classes; the mock keeps OML's bare label numbers
                row[C.CATEGORIES_COLUMN] = pattern
                row[C.LABEL_NAMES_COLUMN] = f"{figure} {pattern}"
            rows.append(row)
        if progress is not None:
            progress((label + 1) / len(classes), f"drew class {label + 1}/{len(classes)}")
    df = pd.DataFrame(rows)
    df.to_csv(root / CSV_NAME, index=False)
    return df


def generate_shapes_dataset(
    root: str | Path,
    n_classes: int = 48,
    images_per_class: int = 16,
    image_size: int = 96,
    seed: int = 0,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Write the configurable shapes dataset to `root` and return its dataframe (all splits).

    A class is (figure, pattern); classes are split half/half into train and validation, disjoint as in the
    CUB/SOP protocol; validation items are both query and gallery; a class is named "<figure> <pattern>"
    (`label_name`), its pattern is its `category`. The result depends only on the arguments.
    """
    all_classes = [(figure, pattern) for pattern in PATTERNS for figure in FIGURES]
    if not 2 <= n_classes <= len(all_classes):
        raise InputError(f"n_classes must be between 2 and {len(all_classes)} (figures x patterns), got {n_classes}.")
    if images_per_class < 2:
        raise InputError(f"images_per_class must be at least 2 to form positive pairs, got {images_per_class}.")
    if image_size < 16:
        raise InputError(f"image_size must be at least 16 pixels, got {image_size}.")
    # Split the figure x pattern grid like a checkerboard (train first), so both halves see every figure and
    # every pattern, in different combinations: what training learns about shapes and fills carries over.
    classes = all_classes[:n_classes]
    order = sorted(range(n_classes), key=lambda i: (i // len(FIGURES) + i % len(FIGURES)) % 2)
    return _write_dataset(
        Path(root),
        [classes[i] for i in order],
        images_per_class,
        image_size,
        seed,
        True,
        True,
        lambda _: (True, True),
        progress,
    )


def download_mock_dataset(dataset_root: str | Path = C.MOCK_DATASET_PATH) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Create OML's mock dataset at `dataset_root` (if not there yet) and return `(df_train, df_val)`.

    Nothing is downloaded: the 8 figures x 3 images are drawn locally (also at `MOCK_DATASET_PATH`, where the
    seed's retrieval workflow looks for them). In validation, the first image of each label is the query and the
    other two are its gallery.
    """
    root = Path(dataset_root)
    # The seed later joins paths onto MOCK_DATASET_PATH, whatever root it asked for: keep a copy there too.
    for place in dict.fromkeys([root, Path(C.MOCK_DATASET_PATH)]):
        if not (place / CSV_NAME).is_file():
            _write_dataset(
                place,
                [(figure, "solid") for figure in FIGURES],
                3,
                64,
                0,
                False,
                False,
                lambda i: (i == 0, i != 0),
                None,
            )
    df = pd.read_csv(root / CSV_NAME)
    df_train = df[df[C.SPLIT_COLUMN] == C.TRAIN_SPLIT].reset_index(drop=True)
    df_val = df[df[C.SPLIT_COLUMN] == C.VALIDATION_SPLIT].reset_index(drop=True)
    df_val[C.IS_QUERY_COLUMN] = df_val[C.IS_QUERY_COLUMN].astype(bool)
    df_val[C.IS_GALLERY_COLUMN] = df_val[C.IS_GALLERY_COLUMN].astype(bool)
    return df_train, df_val
