"""U-Net+ pre-processing (Long 2020): CLAHE, total-variation denoising, rescale to [0, 1]."""
import numpy as np
import pytest
from scipy import ndimage

from nuclei_tf.preprocess.clahe_tv import clahe_tv


def dim_cells(seed=0):
    """A dim, low-contrast grey image: blurred blobs between levels 90 and 115, with noise."""
    rng = np.random.default_rng(seed)
    blobs = ndimage.gaussian_filter(rng.random((96, 96)), 4)
    blobs = (blobs - blobs.min()) / np.ptp(blobs)
    return np.clip(90 + 25 * blobs + rng.normal(0, 1, blobs.shape), 0, 255).astype(np.uint8)


def local_contrast(image):
    """Mean standard deviation in 8 x 8 windows, of an image scaled to [0, 1]."""
    mean = ndimage.uniform_filter(image, 8)
    return np.sqrt(np.maximum(ndimage.uniform_filter(image**2, 8) - mean**2, 0)).mean()


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_output_is_float32_in_unit_range_with_a_channel_axis(channels):
    grey = dim_cells()
    image = grey if channels is None else np.repeat(grey[..., None], channels, axis=-1)
    out = clahe_tv(image)
    assert out.dtype == np.float32 and out.shape == (96, 96, channels or 1)
    assert out.min() == 0.0 and out.max() == 1.0


def test_local_contrast_increases():
    grey = dim_cells()
    assert local_contrast(clahe_tv(grey)[..., 0].astype(float)) > 5 * local_contrast(grey / 255.0)  # measured: 11x


def test_tv_weight_smooths():
    grey = dim_cells()
    variation = [np.abs(np.diff(clahe_tv(grey, tv_weight=w)[..., 0], axis=1)).mean() for w in (0.01, 0.2)]
    assert variation[1] < variation[0]


def test_rgb_keeps_its_hue_and_input():
    rgb = np.dstack([dim_cells(), dim_cells() - 30, dim_cells() + 20]).astype(np.uint8)
    before = rgb.copy()
    out = clahe_tv(rgb)
    assert np.array_equal(rgb, before)
    assert np.all(out.reshape(-1, 3).mean(axis=0).argsort() == [1, 0, 2])  # green darkest, blue brightest


def test_bad_shape_is_an_error():
    with pytest.raises(ValueError, match="grey or RGB"):
        clahe_tv(np.zeros((8, 8, 4), np.uint8))
