"""Retrieval pictures: one layout (frames, titles, GT tiles), two renderers, cached thumbnails."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from explorer import const as C
from explorer.retrieval import retrieve
from explorer.viz.retrieval_layout import build_retrieval_layout
from explorer.viz.retrieval_render import framed_thumbnail, render_matplotlib, render_pillow
from explorer.viz.thumbnails import load_thumbnail


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
    assert [t.lines[0] for t in row] == ["Query #0", "#0 · 1.000", "#1 · 2.000", "GT", "GT"]
    assert [t.path for t in row] == [paths[0], paths[1], paths[2], paths[3], paths[4]]


def test_hits_are_green_and_shown_ground_truth_is_not_repeated(scene):
    retrieval, paths = scene
    layout = build_retrieval_layout(retrieval, paths, n_instances=3, query_positions=[7])
    row = layout.rows[0]
    assert row[0].lines[0] == "Query #7"
    assert row[3].color == C.HIT_COLOR and row[3].lines[0] == "#2 · 3.000"
    assert [t.lines[0] for t in row[4:]] == ["GT"]  # only gallery position 3 was missed


def test_verbose_adds_file_names(scene):
    retrieval, paths = scene
    layout = build_retrieval_layout(retrieval, paths, n_instances=1, verbose=True)
    assert layout.rows[0][0].lines == ("Query #0", "item_0.png")


def test_both_renderers_draw_the_same_layout(scene):
    retrieval, paths = scene
    layout = build_retrieval_layout(retrieval, paths, n_instances=2)
    image = render_pillow(layout, tile_size=100)
    assert isinstance(image, Image.Image) and image.width > 5 * 100
    # the query frame is blue: a pixel inside the first tile's border
    frame_pixel = image.getpixel((6 + 1, image.height - 6 - 100 + 1))
    assert frame_pixel == C.QUERY_COLOR
    figure = render_matplotlib(layout)
    assert isinstance(figure, Figure)
    assert len([ax for ax in figure.axes if ax.images]) == 5
    assert figure.axes[1].get_title() == "#0 · 1.000"


def test_five_by_ten_tiles_stay_readable(scene, tmp_path):
    retrieval, paths = scene
    emb = torch.randn(60, 3, generator=torch.Generator().manual_seed(0))
    many = retrieve(emb, torch.arange(60) % 4, [True] * 5 + [False] * 55, [True] * 60, top_n=9)
    layout = build_retrieval_layout(many, [paths[i % 5] for i in range(60)], n_instances=9)
    assert len(layout.rows) == 5 and layout.n_columns >= 10
    image = render_pillow(layout)
    assert image.width // layout.n_columns >= 150  # tiles keep ~160 px each
    figure = render_matplotlib(layout)
    assert figure.get_size_inches()[0] / layout.n_columns >= 1.5


def test_thumbnails_are_cached_and_unreadable_files_get_a_placeholder(scene, tmp_path):
    _, paths = scene
    load_thumbnail.cache_clear()
    first = load_thumbnail(paths[0], None, 64)
    assert load_thumbnail(paths[0], None, 64) is first
    assert load_thumbnail.cache_info().hits == 1
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    placeholder = load_thumbnail(str(broken), None, 64)
    assert placeholder.size == (64, 64)


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
