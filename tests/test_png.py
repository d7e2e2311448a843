"""The row-streaming PNG writer: exact round trip through Pillow, clear errors."""
import numpy as np
import pytest
from PIL import Image

from nuclei_tf.inference.png import IDAT_BYTES, PngRows


@pytest.mark.parametrize("blocks", [[1] * 64, [3, 1, 60], [64]])
def test_rows_written_in_blocks_read_back_exactly(tmp_path, blocks):
    image = np.random.default_rng(0).integers(0, 256, (64, 37, 3), dtype=np.uint8)
    with PngRows(tmp_path / "a.png", 37, 64) as png:
        top = 0
        for size in blocks:
            png.write(image[top : top + size])
            top += size
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), image)


def test_a_large_image_spans_several_idat_chunks(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (700, 600, 3), dtype=np.uint8)
    with PngRows(tmp_path / "big.png", 600, 700) as png:
        for top in range(0, 700, 128):
            png.write(image[top : top + 128])
    assert (tmp_path / "big.png").read_bytes().count(b"IDAT") >= image.nbytes // IDAT_BYTES
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "big.png")), image)


def test_wrong_shapes_and_missing_rows_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected rows of shape \(n, 5, 3\)"):
        with PngRows(tmp_path / "b.png", 5, 4) as png:
            png.write(np.zeros((2, 6, 3), np.uint8))
    with pytest.raises(ValueError, match="more than 4 rows"):
        with PngRows(tmp_path / "c.png", 5, 4) as png:
            png.write(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="2 of 4 rows written"):
        with PngRows(tmp_path / "d.png", 5, 4) as png:
            png.write(np.zeros((2, 5, 3), np.uint8))
