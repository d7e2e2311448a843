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
    assert blue["haematoxylin_od"] > pink["haematoxylin_od"] + 0.3
    assert blue["haematoxylin_od"] > 0.5


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
