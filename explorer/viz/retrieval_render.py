"""Two renderers of one `RetrievalLayout`: a fast Pillow image (the app) and a matplotlib Figure (notebooks, loggers).

Both draw the same framed thumbnails and titles in the frame's colour, so the pictures agree; sizes keep 5 rows x 10
tiles readable.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont, ImageOps

from explorer.viz.retrieval_layout import RetrievalLayout, Tile
from explorer.viz.thumbnails import load_thumbnail

FRAME_FRACTION = 0.04  # frame width relative to the tile
GAP = 6  # pixels between tiles (Pillow)


def framed_thumbnail(tile: Tile, size: int) -> Image.Image:
    """The tile's thumbnail inside a frame of its colour, `size` x `size` in total."""
    frame = max(2, round(size * FRAME_FRACTION))
    return ImageOps.expand(load_thumbnail(tile.path, tile.bbox, size - 2 * frame), border=frame, fill=tile.color)


def render_pillow(layout: RetrievalLayout, tile_size: int = 160, font_size: int = 13) -> Image.Image:
    """One RGB image: every row of the layout, titles (in the frame's colour) above the tiles."""
    font = ImageFont.load_default(size=font_size)
    line_height = font_size + 4
    text_height = layout.n_lines * line_height + 2
    cell_width, cell_height = tile_size + GAP, text_height + tile_size + GAP
    canvas = Image.new(
        "RGB",
        (max(1, layout.n_columns * cell_width + GAP), max(1, len(layout.rows) * cell_height + GAP)),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(layout.rows):
        for c, tile in enumerate(row):
            left, top = GAP + c * cell_width, GAP + r * cell_height
            for i, line in enumerate(tile.lines):
                draw.text(
                    (left + tile_size // 2, top + i * line_height),
                    _fit(line, font, tile_size),
                    fill=tile.color,
                    font=font,
                    anchor="ma",
                )
            canvas.paste(framed_thumbnail(tile, tile_size), (left, top + text_height))
    return canvas


def render_matplotlib(
    layout: RetrievalLayout, tile_inches: float = 1.9, pyplot: bool = False, font_size: float = 8.0
) -> Figure:
    """A Figure with one axes per tile. `pyplot=True` registers it with pyplot so `plt.show()` displays it."""
    n_rows, n_columns = max(1, len(layout.rows)), max(1, layout.n_columns)
    figsize = (n_columns * tile_inches, n_rows * (tile_inches + 0.18 * layout.n_lines))
    if pyplot:
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=figsize)
    else:
        figure = Figure(figsize=figsize)
    axes = figure.subplots(n_rows, n_columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    pixels = int(tile_inches * 100)
    for r, row in enumerate(layout.rows):
        for c, tile in enumerate(row):
            ax = axes[r][c]
            ax.imshow(np.asarray(framed_thumbnail(tile, pixels)))
            ax.set_title("\n".join(tile.lines), fontsize=font_size, color=np.array(tile.color) / 255)
    figure.tight_layout()
    return figure


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """Shorten `text` with an ellipsis in the middle until it fits `width` pixels."""
    if font.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 4 and font.getlength(text[: keep // 2] + "…" + text[-(keep // 2) :]) > width:
        keep -= 2
    return text[: keep // 2] + "…" + text[-(keep // 2) :]
