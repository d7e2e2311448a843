"""Per-nucleus measurements: area, perimeter, circularity, haematoxylin OD, centroid."""
import math

import numpy as np
import pytest

from nuclei_tf.postprocess.measurements import RUIFROK, RUIFROK_HE, haematoxylin_image, nucleus_measurements
from nuclei_tf.preprocess.macenko import concentrations

from conftest import disk_instances, random_rgb

PINK = (240, 170, 210)  # light eosin
BLUE = (70, 40, 130)  # dark haematoxylin


def white(shape):
    return np.full((*shape, 3), 255, dtype=np.uint8)


def test_disk_area_perimeter_circularity():
    radius, mpp = 10, 0.25
    labels = disk_instances((40, 40), [(20, 20)], radius)
    (m,) = nucleus_measurements(labels, white(labels.shape), mpp)
    assert m["id"] == 1
    assert m["area_um2"] == pytest.approx(math.pi * radius**2 * mpp**2, rel=0.05)
    assert m["perimeter_um"] == pytest.approx(2 * math.pi * radius * mpp, rel=0.08)
    assert 0.85 < m["circularity"] <= 1.0
    assert (m["centroid_x"], m["centroid_y"]) == pytest.approx((20.5, 20.5))  # pixel centres at +0.5


def test_rectangle_less_circular_than_disk_and_area_scales_with_mpp_squared():
    labels = np.zeros((20, 40), dtype=np.int32)
    labels[5:10, 5:25] = 1  # 20 x 5
    (rect,) = nucleus_measurements(labels, white(labels.shape), 0.5)
    (disk,) = nucleus_measurements(disk_instances((40, 40), [(20, 20)], 10), white((40, 40)), 0.5)
    assert rect["circularity"] < 0.7 < disk["circularity"]
    assert rect["area_um2"] == pytest.approx(100 * 0.25)
    (double,) = nucleus_measurements(labels, white(labels.shape), 1.0)
    assert double["area_um2"] == pytest.approx(4 * rect["area_um2"])
    assert double["perimeter_um"] == pytest.approx(2 * rect["perimeter_um"])
    assert double["circularity"] == pytest.approx(rect["circularity"])


def test_haematoxylin_od_dark_blue_above_light_pink():
    labels = disk_instances((40, 80), [(20, 20), (20, 60)], 8)
    image = white(labels.shape)
    image[labels == 1] = BLUE
    image[labels == 2] = PINK
    blue, pink = nucleus_measurements(labels, image, 0.5)
    assert blue["hematoxylin_od"] > pink["hematoxylin_od"] + 0.3
    assert blue["hematoxylin_od"] > 0.5


def test_haematoxylin_image_is_least_squares_deconvolution():
    image = random_rgb((16, 16), seed=3)
    expected = concentrations(image, RUIFROK_HE, RUIFROK)[:, 0].reshape(16, 16)
    np.testing.assert_allclose(haematoxylin_image(image), expected, rtol=1e-5, atol=1e-5)
    assert haematoxylin_image(white((2, 2))).max() == 0.0


def test_single_pixel_empty_and_skipped_ids():
    labels = np.zeros((5, 5), dtype=np.int32)
    assert nucleus_measurements(labels, white(labels.shape), 0.5) == []
    labels[2, 2] = 1
    (m,) = nucleus_measurements(labels, white(labels.shape), 0.5)
    assert all(math.isfinite(v) for v in m.values())
    assert m["area_um2"] == 0.25 and m["perimeter_um"] > 0 and 0 < m["circularity"] <= 1
    assert (m["centroid_x"], m["centroid_y"]) == (2.5, 2.5)
    labels = disk_instances((30, 30), [(8, 8), (20, 20)], 4)
    labels[labels == 2] = 3
    assert [m["id"] for m in nucleus_measurements(labels, white(labels.shape), 0.5)] == [1, 3]


def test_nucleus_independent_of_neighbours_in_its_box():
    alone = disk_instances((40, 40), [(20, 20)], 9)
    crowded = alone.copy()
    crowded[(alone == 0) & (disk_instances((40, 40), [(12, 30)], 7) > 0)] = 2  # touches, inside the bbox
    crowded[(crowded == 0) & (disk_instances((40, 40), [(30, 12)], 7) > 0)] = 3
    image = random_rgb((40, 40), seed=1)
    (a,) = nucleus_measurements(alone, image, 0.3)
    b = nucleus_measurements(crowded, image, 0.3)
    assert [m["id"] for m in b] == [1, 2, 3]
    assert b[0] == a


def test_rejects_misaligned_inputs():
    with pytest.raises(ValueError):
        nucleus_measurements(np.zeros((4, 4), np.int32), white((4, 5)), 0.5)


@pytest.mark.parametrize("block_pixels", [1, 3 * 38, 7 * 38 + 5, 1 << 20])
def test_all_nuclei_measured_at_once_equal_each_nucleus_measured_on_its_own_mask(monkeypatch, block_pixels):
    """The one-pass measurements against the obvious per-nucleus computation: skimage's
    perimeter_crofton on each nucleus' padded mask, pixel counts, means of the pixel centres and of
    the haematoxylin image, on touching random nuclei, any block size."""
    from scipy import ndimage
    from skimage.measure import perimeter_crofton
    from skimage.segmentation import watershed

    import nuclei_tf.postprocess.measurements as measurements

    monkeypatch.setattr(measurements, "BLOCK_PIXELS", block_pixels)
    rng = np.random.default_rng(3)
    seeds = np.zeros((45, 38), np.int32)
    seeds[rng.integers(0, 45, 25), rng.integers(0, 38, 25)] = np.arange(1, 26)
    labels = watershed(rng.random((45, 38)), seeds, mask=rng.random((45, 38)) < 0.8)  # touching, ragged, some split
    labels[labels == 5] = 0  # a missing id
    image = random_rgb(labels.shape, seed=4)
    haematoxylin = haematoxylin_image(image)
    found = nucleus_measurements(labels, image, 0.3)
    assert [m["id"] for m in found] == [i for i in range(1, labels.max() + 1) if (labels == i).any()]
    for m in found:
        mask = labels == m["id"]
        rows, cols = np.nonzero(mask)
        assert m["area_px"] == mask.sum() and m["area_um2"] == pytest.approx(mask.sum() * 0.09)
        assert m["perimeter_px"] == pytest.approx(perimeter_crofton(np.pad(mask, 1), directions=4), abs=1e-9)
        assert m["perimeter_um"] == pytest.approx(0.3 * m["perimeter_px"])
        assert (m["centroid_x"], m["centroid_y"]) == pytest.approx((cols.mean() + 0.5, rows.mean() + 0.5))
        assert m["hematoxylin_od"] == pytest.approx(haematoxylin[mask].mean(), rel=1e-5, abs=1e-6)
    assert ndimage.label(labels > 0)[1] < len(found)  # neighbours touch: each measured apart all the same


def test_without_a_resolution_only_the_micron_measurements_are_unknown():
    (m,) = nucleus_measurements(disk_instances((40, 40), [(20, 20)], 10), white((40, 40)), None)
    assert m["area_um2"] is None and m["perimeter_um"] is None and m["area_px"] > 300 and 0.85 < m["circularity"] <= 1
