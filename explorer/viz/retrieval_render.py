"""Two renderers of one `RetrievalLayout`: a fast Pillow image (the app) and a matplotlib Figure (notebooks, loggers).

Both draw the same framed thumbnails and titles in the frame's colour, so the pictures agree. The Pillow picture never
grows wider than `MAX_COLUMNS` tiles (long rows wrap), so a browser shows its captions near their drawn size; its
`GridGeometry` says which tile lies under a clicked pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont, ImageOps

from explorer.viz.retrieval_layout import RetrievalLayout, Tile
from explorer.viz.thumbnails import load_thumbnail

FRAME_FRACTION = 0.04  # frame width relative to the tile
GAP = 6  # pixels between tiles (Pillow)
TILE_SIZE = 128  # pixels per tile (Pillow)
FONT_SIZE = 14  # caption pixels: at MAX_COLUMNS tiles the picture is ~1,350 px wide, so a page shows them >= 11 px
MAX_COLUMNS = 10  # a longer row wraps onto further lines of tiles instead of shrinking every caption
TOP_MARGIN = 34  # band above the first titles: the heading on the left, Gradio's image buttons on the right
HEADING_COLOR = (60, 60, 60)


@dataclass(frozen=True)
class GridGeometry:
    """Where the Pillow renderer puts each tile: rows wrap after `max_columns` tiles onto further lines."""

    layout: RetrievalLayout
    tile_size: int = TILE_SIZE
    font_size: int = FONT_SIZE
    max_columns: int = MAX_COLUMNS

    @property
    def line_height(self) -> int:
        return self.font_size + 4

    @property
    def text_height(self) -> int:
        return self.layout.n_lines * self.line_height + 2

    @property
    def cell(self) -> tuple[int, int]:
        return self.tile_size + GAP, self.text_height + self.tile_size + GAP

    def placed(self) -> list[tuple[int, int, Tile]]:
        """(left, top of the tile's titles, tile) of every tile, in reading order."""
        cell_width, cell_height = self.cell
        placed, line = [], 0
        for row in self.layout.rows:
            for index, tile in enumerate(row):
                column, extra_line = index % self.max_columns, index // self.max_columns
                placed.append((GAP + column * cell_width, TOP_MARGIN + (line + extra_line) * cell_height, tile))
            line += max(1, -(-len(row) // self.max_columns))
        return placed

    def size(self) -> tuple[int, int]:
        cell_width, cell_height = self.cell
        n_lines = sum(max(1, -(-len(row) // self.max_columns)) for row in self.layout.rows)
        columns = min(self.layout.n_columns, self.max_columns)
        return max(1, columns * cell_width + GAP), TOP_MARGIN + max(1, n_lines * cell_height + GAP)


def framed_thumbnail(tile: Tile, size: int) -> Image.Image:
    """The tile's thumbnail inside a frame of its colour, `size` x `size` in total."""
    frame = max(2, round(size * FRAME_FRACTION))
    return ImageOps.expand(load_thumbnail(tile.path, tile.bbox, size - 2 * frame), border=frame, fill=tile.color)


def render_pillow(
    layout: RetrievalLayout,
    tile_size: int = TILE_SIZE,
    font_size: int = FONT_SIZE,
    max_columns: int = MAX_COLUMNS,
    heading: str = "",
) -> Image.Image:
    """One RGB image: `heading` (e.g. which page this is) in the top band, then every row of the layout (wrapped
    after `max_columns` tiles), titles in the frame's colour above the tiles."""
    geometry = GridGeometry(layout, tile_size, font_size, max_columns)
    font = ImageFont.load_default(size=font_size)
    canvas = Image.new("RGB", geometry.size(), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if heading:
        shown = _fit(heading, font, max(1, canvas.width - 120))
        draw.text((GAP, TOP_MARGIN // 2), shown, fill=HEADING_COLOR, font=font, anchor="lm")
    for left, top, tile in geometry.placed():
        for i, line in enumerate(tile.lines):
            position = (left + tile_size // 2, top + i * geometry.line_height)
            draw.text(position, _fit(line, font, tile_size), fill=tile.color, font=font, anchor="ma")
        canvas.paste(framed_thumbnail(tile, tile_size), (left, top + geometry.text_height))
    return canvas


def tile_at(geometry: GridGeometry, x: float, y: float) -> Tile | None:
    """The tile drawn at pixel (x, y) of `render_pillow`'s image (its titles count as the tile), or None."""
    cell_width, cell_height = geometry.cell
    for left, top, tile in geometry.placed():
        if left <= x < left + cell_width and top <= y < top + cell_height:
            return tile
    return None


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
