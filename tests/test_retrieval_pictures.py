"""Retrieval pictures: one layout (frames, titles, GT tiles), two renderers, cached thumbnails."""

import os

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from PIL import Image

from explorer import const as C
from explorer.retrieval import retrieve
from explorer.viz.retrieval_layout import RetrievalLayout, Tile, build_retrieval_layout
from explorer.viz.retrieval_render import (
    MAX_COLUMNS,
    GridGeometry,
    framed_thumbnail,
    render_matplotlib,
    render_pillow,
    tile_at,
)
from explorer.viz.thumbnails import cached_thumbnail, hover_thumbnail, load_thumbnail, register_items


@pytest.fixture
def scene(tmp_path):
    # 1-D items x = 0, 1, 2, 3, 10 with labels 0 1 1 0 0; query = item 0 only, gallery = the rest.
    # Gallery positions: 0 -> x1 (label 1), 1 -> x2 (1), 2 -> x3 (0), 3 -> x10 (0).
    paths = []
    for i in range(5):
        path = tmp_path / f"item_{i}.png"
        Image.new("RGB", (30, 20), (40 * i, 100, 200)).save(path)
        paths.append(str(path))
    emb = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    is_query = np.array([True, False, False, False, False])
    retrieval = retrieve(emb, [0, 1, 1, 0, 0], is_query, ~is_query, top_n=4)
    return retrieval, paths


def test_layout_frames_titles_and_missed_ground_truth(scene):
    retrieval, paths = scene
    layout = build_retrieval_layout(retrieval, paths, n_instances=2)
    (row,) = layout.rows
    # query, then the 2 nearest (positions 0 and 1, both wrong label), then the 2 GT the row missed (2 and 3)
    assert [t.color for t in row] == [C.QUERY_COLOR, C.MISS_COLOR, C.MISS_COLOR, C.GT_COLOR, C.GT_COLOR]
    assert [t.lines for t in row] == [
        ("query id 0", "the query"),
        ("id 1", "#1 · 1.000"),
        ("id 2", "#2 · 2.000"),
        ("GT id 3", "missed"),
        ("GT id 4", "missed"),
    ]
    assert [t.path for t in row] == [paths[0], paths[1], paths[2], paths[3], paths[4]]
    assert [t.item_id for t in row] == [0, 1, 2, 3, 4]


def test_hits_are_green_and_shown_ground_truth_is_not_repeated(scene):
    retrieval, paths = scene
    layout = build_retrieval_layout(
        retrieval, paths, n_instances=3, item_ids=[70, 71, 72, 73, 74], truth_ranks=lambda row, missed: [(4, 10.0)]
    )
    row = layout.rows[0]
    assert row[0].lines[0] == "query id 70"  # titles show the item ids the mapping gives
    assert row[3].color == C.HIT_COLOR and row[3].lines == ("id 73", "#3 · 3.000")
    assert [t.lines for t in row[4:]] == [("GT id 74", "#4 · 10.000")]  # only gallery position 3 was missed


def test_label_names_end_every_tiles_title_so_a_miss_says_what_came_instead(scene):
    retrieval, paths = scene
    names = ["heron", "gull", "gull", "heron", "heron"]
    (row,) = build_retrieval_layout(retrieval, paths, n_instances=2, label_names=names).rows
    assert [t.lines[-1] for t in row] == ["heron", "gull", "gull", "heron", "heron"]
    assert row[1].lines == ("id 1", "#1 · 1.000", "gull")


def test_a_query_without_ground_truth_is_framed_neutral_grey(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (8, 8)).save(paths[-1])
    retrieval = retrieve(
        torch.tensor([[0.0], [1.0], [2.0]]), [0, 1, 1], [True, False, False], [False, True, True], top_n=2
    )
    (row,) = build_retrieval_layout(retrieval, paths, n_instances=2).rows
    assert [t.color for t in row] == [C.QUERY_COLOR, C.GT_COLOR, C.GT_COLOR]  # nothing could be right or wrong


def test_long_rows_wrap_and_a_clicked_pixel_finds_its_tile(scene):
    _, paths = scene
    tiles = tuple(Tile(paths[i % 5], None, C.GT_COLOR, (f"id {i}",), i) for i in range(25))
    layout = RetrievalLayout((tiles, tiles[:3]))
    geometry = GridGeometry(layout, tile_size=100, max_columns=10)
    image = render_pillow(layout, tile_size=100, max_columns=10, heading="page 1 of 1")
    assert image.size == geometry.size()
    assert image.width < 11 * 106 + 10  # never wider than 10 tiles: captions keep their drawn size
    placed = geometry.placed()
    assert len({top for _, top, _ in placed}) == 4  # 25 tiles wrap onto 3 lines, the second row takes a 4th
    left, top, tile = placed[13]
    assert tile_at(geometry, left + 50, top + 60).item_id == 13
    assert tile_at(geometry, 5_000, 5_000) is None


def test_verbose_adds_file_names(scene):
    retrieval, paths = scene
    layout = build_retrieval_layout(retrieval, paths, n_instances=1, verbose=True)
    assert layout.rows[0][0].lines == ("query id 0", "the query", "item_0.png")


def pillow_tiles(layout, monkeypatch, tile_size=100):
    """Per row, per tile of the Pillow image: (frame colour, image centre colour, title lines, line colours)."""
    from PIL import ImageDraw

    texts, pastes = [], []
    draw_text, paste = ImageDraw.ImageDraw.text, Image.Image.paste

    def record_text(self, xy, text, fill=None, *args, **kwargs):
        texts.append((text, fill))
        return draw_text(self, xy, text, fill, *args, **kwargs)

    def record_paste(self, image, box=None, *args, **kwargs):
        pastes.append((self, box, image.size))
        return paste(self, image, box, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", record_text)
    monkeypatch.setattr(Image.Image, "paste", record_paste)
    canvas = render_pillow(layout, tile_size=tile_size)
    monkeypatch.undo()
    boxes = [box for target, box, size in pastes if target is canvas and size == (tile_size, tile_size)]
    rows, text_iter = {}, iter(texts)
    # tiles are pasted in row-major order, each after its title lines; rows are told apart by their top edge
    for (left, top), tile in zip(boxes, [t for row in layout.rows for t in row], strict=True):
        drawn = [next(text_iter) for _ in tile.lines]
        rows.setdefault(top, []).append(
            (
                canvas.getpixel((left + 1, top + 1)),
                canvas.getpixel((left + tile_size // 2, top + tile_size // 2)),
                tuple(text for text, _ in drawn),
                tuple(tuple(fill) for _, fill in drawn),
            )
        )
    return [rows[top] for top in sorted(rows)]


def matplotlib_tiles(layout):
    """The same description read back from the matplotlib Figure: axes images, titles and their colour."""
    figure = render_matplotlib(layout)
    rows = {}
    for ax in figure.axes:
        if not ax.images:
            continue
        pixels = np.asarray(ax.images[0].get_array())
        size = pixels.shape[0]
        title = ax.get_title()
        color = tuple(round(c * 255) for c in to_rgb(ax.title.get_color()))
        lines = tuple(title.split("\n"))
        spec = ax.get_subplotspec()
        rows.setdefault(spec.rowspan.start, []).append(
            (
                spec.colspan.start,
                (
                    tuple(int(v) for v in pixels[1, 1][:3]),
                    tuple(int(v) for v in pixels[size // 2, size // 2][:3]),
                    lines,
                    (color,) * len(lines),
                ),
            )
        )
    return [[tile for _, tile in sorted(rows[r])] for r in sorted(rows)]


def test_both_renderers_draw_the_same_tiles_frames_and_titles(scene, monkeypatch):
    _, paths = scene
    emb = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    is_query = np.array([True, False, False, False, True])  # two rows of different lengths
    retrieval = retrieve(emb, [0, 1, 1, 0, 0], is_query, ~is_query | is_query, top_n=4)
    layout = build_retrieval_layout(retrieval, paths, n_instances=2, verbose=True)
    expected = [
        [
            (tile.color, (40 * paths.index(tile.path), 100, 200), tile.lines, (tile.color,) * len(tile.lines))
            for tile in row
        ]
        for row in layout.rows
    ]
    assert [len(row) for row in expected] == [5, 4]
    assert pillow_tiles(layout, monkeypatch) == expected
    assert matplotlib_tiles(layout) == expected


def test_five_by_ten_tiles_stay_readable(scene, tmp_path):
    retrieval, paths = scene
    emb = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    many = retrieve(emb, torch.arange(60) % 4, [True] * 5 + [False] * 55, [True] * 60, top_n=9)
    layout = build_retrieval_layout(many, [paths[i % 5] for i in range(60)], n_instances=9)
    assert len(layout.rows) == 5 and layout.n_columns >= 10
    image = render_pillow(layout)
    assert image.width // MAX_COLUMNS >= 128  # tiles keep 128 px each, wrapping rows longer than MAX_COLUMNS
    figure = render_matplotlib(layout)
    assert figure.get_size_inches()[0] / layout.n_columns >= 1.5


def test_thumbnails_are_cached_and_unreadable_files_get_a_placeholder(scene, tmp_path):
    _, paths = scene
    cached_thumbnail.cache_clear()
    first = load_thumbnail(paths[0], None, 64)
    assert load_thumbnail(paths[0], None, 64) is first
    assert cached_thumbnail.cache_info().hits == 1
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    placeholder = load_thumbnail(str(broken), None, 64)
    assert placeholder.size == (64, 64)


def test_a_regenerated_image_gets_a_fresh_thumbnail(tmp_path):
    path = tmp_path / "regenerated.png"
    Image.new("RGB", (20, 20), (255, 0, 0)).save(path)
    assert load_thumbnail(str(path), None, 16).getpixel((8, 8)) == (255, 0, 0)
    Image.new("RGB", (24, 24), (0, 0, 255)).save(path)  # same path, new content
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_thumbnail(str(path), None, 16).getpixel((8, 8)) == (0, 0, 255)


def test_framed_thumbnail_crops_to_the_bbox(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))
    image.save(tmp_path / "halves.png")
    from explorer.viz.retrieval_layout import Tile

    tile = Tile(str(tmp_path / "halves.png"), (0, 0, 20, 20), C.HIT_COLOR, ("x",))
    framed = framed_thumbnail(tile, 50)
    assert framed.size == (50, 50)
    assert framed.getpixel((25, 25)) == (255, 0, 0)
    assert framed.getpixel((0, 0)) == C.HIT_COLOR


def test_registering_the_same_items_again_gives_their_token_back(scene):
    _, path_list = scene
    paths, bboxes = tuple(path_list), (None,) * len(path_list)
    token = register_items(paths, bboxes)
    assert register_items(paths, bboxes) == token  # the same tuples: found without hashing them again
    assert register_items(list(paths), list(bboxes)) == token  # equal items: the same token
    assert register_items(paths[::-1], bboxes) != token
    assert hover_thumbnail(token, 0).startswith("data:image/webp;base64,")
    assert hover_thumbnail(token, len(paths)) is None
