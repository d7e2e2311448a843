import math
import time
import tracemalloc
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile

from nuclei_tf.inference.pyramid import pyramid_shapes, write_label_pyramid


def blob_labels(height, width, seed=0, count=300):
    """An int32 instance map with ``count`` random discs (later discs overwrite earlier ones)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.int32)
    rows, cols = np.ogrid[:height, :width]
    for i in range(1, count + 1):
        r, c, radius = rng.integers(0, height), rng.integers(0, width), rng.integers(2, 25)
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = i * 7919  # large, sparse ids
    return labels


def irregular_blocks(labels, seed=1):
    rng = np.random.default_rng(seed)
    top = 0
    while top < len(labels):
        rows = int(rng.choice([0, 1, 2, 3, 17, 100, 255, 256, 257, 600]))
        yield labels[top : top + rows]
        top += rows


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def labels():
    return blob_labels(1000, 777)


def test_levels_equal_decimated_input(tmp_path, labels):
    path = tmp_path / "slide.labels.tif"
    levels = write_label_pyramid(path, irregular_blocks(labels), 1000, 777, tile=128, smallest=125)
    shapes = [(1000, 777), (500, 389), (250, 195), (125, 98)]
    assert levels == len(shapes) == len(pyramid_shapes(1000, 777, 125))
    assert leftovers(tmp_path) == ["slide.labels.tif"]
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and len(tif.series) == 1
        first = tif.pages[0]
        assert len(first.subifds) == levels - 1
        series = tif.series[0]
        assert [level.shape for level in series.levels] == shapes
        for k, level in enumerate(series.levels):
            page = level.keyframe
            assert page.dtype == np.int32
            assert page.is_tiled and (page.tilelength, page.tilewidth) == (128, 128)
            assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
            if k:
                assert page.subfiletype == tifffile.FILETYPE.REDUCEDIMAGE
            np.testing.assert_array_equal(level.asarray(), labels[:: 2**k, :: 2**k])
    # napari-style reading: one level at a time
    for k in range(levels):
        np.testing.assert_array_equal(tifffile.imread(path, series=0, level=k), labels[:: 2**k, :: 2**k])


def test_level_shapes_halve_with_ceil():
    assert pyramid_shapes(1000, 777, 1024) == [(1000, 777)]
    assert pyramid_shapes(2049, 5, 1024) == [(2049, 5), (1025, 3), (513, 2)]
    assert pyramid_shapes(150_000, 150_000, 1024)[-1] == (586, 586)


def test_pixel_size_in_ome_and_resolution_tags(tmp_path, labels):
    path = tmp_path / "slide.labels.tif"
    levels = write_label_pyramid(path, iter([labels]), 1000, 777, mpp=0.25, tile=256, smallest=300)
    assert levels == 3
    with tifffile.TiffFile(path) as tif:
        pixels = ET.fromstring(tif.ome_metadata).find(".//{*}Pixels")
        assert float(pixels.get("PhysicalSizeX")) == pytest.approx(0.25)
        assert float(pixels.get("PhysicalSizeY")) == pytest.approx(0.25)
        assert pixels.get("PhysicalSizeXUnit", "µm") == "µm"
        assert pixels.get("Type") == "int32"
        for k, level in enumerate(tif.series[0].levels):
            page = level.keyframe
            assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.CENTIMETER
            for tag in ("XResolution", "YResolution"):
                numerator, denominator = page.tags[tag].value
                assert 1e4 / (numerator / denominator) == pytest.approx(0.25 * 2**k)  # um per px


def test_small_map_is_one_level(tmp_path, labels):
    path = tmp_path / "small.tif"
    assert write_label_pyramid(path, irregular_blocks(labels), 1000, 777) == 1
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series[0].levels) == 1 and not tif.pages[0].subifds
        np.testing.assert_array_equal(tif.series[0].asarray(), labels)


def test_other_integer_dtypes_and_other_compression(tmp_path, labels):
    path = tmp_path / "u16.tif"
    small = (labels % 60000).astype(np.uint16)
    blocks = [small[:300], small[300:].astype(np.int64)]
    assert write_label_pyramid(path, blocks, 1000, 777, tile=64, smallest=400, compression=None) == 3
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == tifffile.COMPRESSION.NONE
        for k, level in enumerate(tif.series[0].levels):
            assert level.dtype == np.int32
            np.testing.assert_array_equal(level.asarray(), small[:: 2**k, :: 2**k])


@pytest.mark.parametrize(
    "blocks, message",
    [
        (lambda l: [l[:500], l[500:, :-1]], "width 776, expected 777"),
        (lambda l: [l[:500], l[500:].astype(np.float32)], "dtype float32"),
        (lambda l: [l[:500].astype(bool)], "dtype bool"),
        (lambda l: [l[:500], l[500:].astype(np.int64) + 2**31], "outside the int32 range"),
        (lambda l: [l[:999]], "ended after 999 rows, expected 1000"),
        (lambda l: [l[:256], l[256:]], None),  # control: fine
        (lambda l: [l[:768], l[768:], l[:1]], "received at least 1001 rows, expected 1000"),
        (lambda l: [l[:600], l], "received at least 1600 rows, expected 1000"),
        (lambda l: [l[:10]], "ended after 10 rows, expected 1000"),
    ],
)
def test_bad_streams_raise_and_leave_nothing(tmp_path, labels, blocks, message):
    path = tmp_path / "bad.tif"
    if message is None:
        write_label_pyramid(path, blocks(labels), 1000, 777, tile=256, smallest=200)
        assert leftovers(tmp_path) == ["bad.tif"]
        return
    with pytest.raises(ValueError, match=message):
        write_label_pyramid(path, blocks(labels), 1000, 777, tile=256, smallest=200)
    assert leftovers(tmp_path) == []


def test_existing_output_is_kept_on_error(tmp_path, labels):
    path = tmp_path / "keep.tif"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError):
        write_label_pyramid(path, [labels[:5]], 1000, 777)
    assert path.read_bytes() == b"previous" and leftovers(tmp_path) == ["keep.tif"]


def synthetic_rows(top, rows, width):
    """Rows ``top..top+rows`` of a deterministic 32 x 32 px checkerboard of distinct ids."""
    r = np.arange(top, top + rows, dtype=np.int32)[:, None] // 32
    c = np.arange(width, dtype=np.int32)[None, :] // 32
    return (r * 1009 + c + 1).astype(np.int32)


def test_peak_memory_bounded_by_bands_not_map(tmp_path):
    height = width = 8192
    block = 64
    path = tmp_path / "big.tif"

    def stream():
        for top in range(0, height, block):
            yield synthetic_rows(top, block, width)

    start = time.perf_counter()
    tracemalloc.start()
    try:
        levels = write_label_pyramid(path, stream(), height, width, mpp=0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    full = height * width * 4  # 256 MB
    assert levels == 4
    assert peak < full / 8, f"peak {peak / 2**20:.1f} MiB"  # bands: < 2 * 256 * 8192 * 4 = 16 MiB
    assert elapsed < 60
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        assert [level.shape for level in series.levels] == [(8192, 8192), (4096, 4096), (2048, 2048), (1024, 1024)]
        expected = synthetic_rows(0, height, width)[::2, ::2]
        np.testing.assert_array_equal(series.levels[1].asarray(), expected)
        np.testing.assert_array_equal(series.levels[3].asarray(), expected[::4, ::4])
        # level 0 spot checks: a tile row in the middle and the last rows
        page = series.levels[0].keyframe
        assert math.ceil(8192 / page.tilelength) == 32
    level0 = tifffile.imread(path, series=0, level=0)
    np.testing.assert_array_equal(level0[4000:4300], synthetic_rows(4000, 300, width))
    np.testing.assert_array_equal(level0[-5:], synthetic_rows(height - 5, 5, width))


def test_extra_rows_after_last_tile_row_are_refused(tmp_path, labels):
    # height a multiple of the tile: tifffile has every level-0 tile before the stream ends
    path = tmp_path / "exact.tif"
    with pytest.raises(ValueError, match="received at least 517 rows, expected 512"):
        write_label_pyramid(path, [labels[:512], labels[:5]], 512, 777, tile=256, smallest=100)
    assert leftovers(tmp_path) == []
    # empty blocks after the last row are fine
    assert write_label_pyramid(path, [labels[:512], labels[:0]], 512, 777, tile=256, smallest=100) == 4
    for k in range(4):
        np.testing.assert_array_equal(tifffile.imread(path, series=0, level=k), labels[:512:2**k, :: 2**k])


def test_producer_error_propagates_and_leaves_nothing(tmp_path, labels):
    def failing():
        yield labels[:300]
        raise RuntimeError("probability map unreadable")

    with pytest.raises(RuntimeError, match="probability map unreadable"):
        write_label_pyramid(tmp_path / "fail.tif", failing(), 1000, 777, smallest=200)
    assert leftovers(tmp_path) == []


def test_bad_arguments(tmp_path):
    for kwargs, message in [(dict(height=0), "at least 1 x 1"), (dict(tile=100), "multiple of 16"),
                            (dict(mpp=0), "mpp"), (dict(smallest=0), "smallest")]:
        args = dict(height=10, width=10) | kwargs
        with pytest.raises(ValueError, match=message):
            write_label_pyramid(tmp_path / "x.tif", [], **args)
    assert leftovers(tmp_path) == []
