"""Tiling and stitching: coverage, padding, exact identity round trips."""
import numpy as np
import pytest

from nuclei_tf.preprocess.tiling import extract_tiles, random_crop_starts, stitch, tile_grid, tile_starts


def test_tile_starts_cover_with_edge_recrop():
    assert tile_starts(1000, 256, 0.1) == [0, 230, 460, 690, 744]
    assert tile_starts(1000, 256, 0.5) == [0, 128, 256, 384, 512, 640, 744]
    assert tile_starts(256, 256) == [0] and tile_starts(100, 256) == [0]
    with pytest.raises(ValueError):
        tile_starts(100, 32, 1.0)


@pytest.mark.parametrize("blend", ["mean", "max", "smooth"])
@pytest.mark.parametrize("shape, tile, overlap", [((1000, 700, 3), 256, 0.5), ((100, 70), 64, 0.25), ((30, 40, 2), 64, 0.1)])
def test_identity_round_trip_is_exact(blend, shape, tile, overlap):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    tiles, starts = extract_tiles(image, tile, overlap)
    assert tiles.shape[1:3] == (tile, tile)
    out = stitch(tiles, starts, shape, blend)
    assert out.shape == shape and np.array_equal(out, image)


def test_uint8_image_round_trip():
    image = np.random.default_rng(1).integers(0, 256, (300, 520, 3), dtype=np.uint8)
    tiles, starts = extract_tiles(image, 256, 0.1)
    assert np.array_equal(stitch(tiles, starts, image.shape).astype(np.uint8), image)


def test_every_pixel_is_covered():
    shape = (517, 300)
    covered = np.zeros(shape, bool)
    for r, c in tile_grid(shape, 128, 0.3):
        covered[r : r + 128, c : c + 128] = True
    assert covered.all()


def test_random_crops_respect_the_foreground_ratio():
    instances = np.zeros((200, 200), np.int32)
    instances[:60, :60] = 1
    starts = random_crop_starts(instances, 64, count=20, min_foreground=0.5, rng=0)
    assert starts
    for r, c in starts:
        assert (instances[r : r + 64, c : c + 64] > 0).mean() >= 0.5
    assert random_crop_starts(instances, 64, 20, 0.5, rng=0) == starts
    assert random_crop_starts(np.zeros((80, 80), np.int32), 64, 3, 0.1, rng=0, max_tries=5) == []
