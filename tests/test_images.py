"""Image reading edge cases: EXIF rotation, colour modes, bbox crop, corrupt files, decompression bombs."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import const
from explorer.data import ImageReadError, read_image


def test_exif_orientation_is_applied(tmp_path: Path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").size == (20, 40)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA", "1"])
def test_any_mode_becomes_rgb(tmp_path: Path, mode: str):
    suffix = ".tiff" if mode == "CMYK" else ".png"
    Image.new(mode, (6, 5)).save(tmp_path / f"img{suffix}")
    image = read_image(tmp_path / f"img{suffix}")
    assert image.mode == "RGB" and image.size == (6, 5)


def test_rgba_transparency_is_composed_on_white(tmp_path: Path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert np.asarray(read_image(tmp_path / "clear.png")).min() == 255


def test_16_bit_grey_is_rescaled(tmp_path: Path):
    Image.fromarray(np.full((3, 3), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert np.asarray(read_image(tmp_path / "deep.png")).min() == 255


def test_bbox_crop(tmp_path: Path):
    array = np.zeros((10, 20, 3), dtype=np.uint8)
    array[2:6, 5:9] = 200
    Image.fromarray(array).save(tmp_path / "box.png")
    crop = read_image(tmp_path / "box.png", bbox=(5, 2, 9, 6))
    assert crop.size == (4, 4) and np.asarray(crop).min() == 200


def test_bbox_outside_image(tmp_path: Path):
    Image.new("RGB", (10, 10)).save(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match="outside the 10x10 image"):
        read_image(tmp_path / "small.png", bbox=(20, 20, 30, 30))


def test_corrupt_file_names_the_file(tmp_path: Path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")


def test_truncated_file_names_the_file(tmp_path: Path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="t.jpg"):
        read_image(tmp_path / "t.jpg")


def test_missing_file(tmp_path: Path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "ghost.png")


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch):
    Image.new("L", (300, 300)).save(tmp_path / "bomb.png")
    monkeypatch.setattr("explorer.data.images.MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ImageReadError, match="decompression bombs"):
        read_image(tmp_path / "bomb.png")
    assert const.MAX_IMAGE_PIXELS > 300 * 300  # the real limit lets ordinary photos through
