"""Weight maps (Ronneberger eq. 2) against a naive per-nucleus full-image distance transform."""
import numpy as np
import pytest
from scipy import ndimage

from nuclei_tf.data import MoNuSeg
from nuclei_tf.preprocess.weight_map import class_balance, weight_map


def naive_weight_map(instances, w0=10.0, sigma=5.0):
    """Every nucleus's full-image distance transform, the two smallest per pixel."""
    ids = [i for i in np.unique(instances) if i]
    weights = class_balance(instances).astype(np.float64)
    if len(ids) < 2:
        distances = [ndimage.distance_transform_edt(instances != i) for i in ids] + [np.full(instances.shape, np.inf)] * 2
    else:
        distances = [ndimage.distance_transform_edt(instances != i) for i in ids]
    stack = np.sort(np.stack(distances), axis=0)
    border = w0 * np.exp(-((stack[0] + stack[1]) ** 2) / (2 * sigma**2))
    return weights + np.where(instances == 0, border, 0.0)


def test_touching_nuclei_get_a_ridge_that_a_binary_mask_would_lose():
    instances = np.zeros((20, 30), np.int32)
    instances[5:15, 5:14] = 1
    instances[5:15, 15:25] = 2  # one background column between them
    w = weight_map(instances)
    gap = w[10, 14]
    assert gap > 9.0  # w_c + w0 * exp(-(1 + 1)^2 / 50)
    assert np.isclose(gap, class_balance(instances)[10, 14] + 10 * np.exp(-4 / 50), atol=1e-6)
    merged = weight_map((instances > 0).astype(np.int32))
    assert merged[10, 14] < 3.0, "relabelling the binary mask merges the nuclei and loses the ridge"
    np.testing.assert_allclose(w, naive_weight_map(instances), atol=1e-3)


def test_class_balance_and_empty_images():
    assert np.all(weight_map(np.zeros((8, 8), np.int32)) == 1.0)
    one = np.zeros((8, 8), np.int32)
    one[2:4, 2:4] = 1
    w = weight_map(one)
    assert np.isclose(w[one > 0].sum(), w.size / 2) and w.dtype == np.float32
    with pytest.raises(ValueError, match="2-D integer instance map"):
        weight_map(np.zeros((4, 4), np.float32))


def test_matches_naive_on_random_nuclei():
    rng = np.random.default_rng(0)
    instances = np.zeros((96, 96), np.int32)
    rows, cols = np.ogrid[:96, :96]
    for label in range(1, 25):
        r, c, radius = rng.integers(0, 96), rng.integers(0, 96), rng.integers(2, 7)
        instances[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = label
    np.testing.assert_allclose(weight_map(instances), naive_weight_map(instances), atol=1e-3)


def test_matches_naive_on_real_monuseg(monuseg_root):
    record = MoNuSeg(monuseg_root).train()[1]  # an XML-annotated liver image
    instances = record.load_instances()[300:556, 300:556]
    np.testing.assert_allclose(weight_map(instances), naive_weight_map(instances), atol=1e-3)
