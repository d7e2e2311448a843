"""Classical baselines and the Macenko normaliser on synthetic H&E-like images."""
import warnings

import numpy as np
import pytest

from nuclei_tf.baselines import BASELINES
from nuclei_tf.metrics import evaluate_instances
from nuclei_tf.preprocess.macenko import IO, MacenkoNormalizer, macenko_stains

from conftest import disk_instances

HAEMATOXYLIN = np.array([0.65, 0.70, 0.29])
EOSIN = np.array([0.27, 0.83, 0.49])


def synthetic_he(instances, seed=0):
    """An H&E-like RGB image: eosin everywhere, haematoxylin in the nuclei, Beer-Lambert mixing."""
    rng = np.random.default_rng(seed)
    h = np.where(instances > 0, 1.2, 0.05) + rng.uniform(0, 0.1, instances.shape)
    e = np.where(instances > 0, 0.05, 0.8) + rng.uniform(0, 0.3, instances.shape)
    od = h[..., None] * HAEMATOXYLIN / np.linalg.norm(HAEMATOXYLIN) + e[..., None] * EOSIN / np.linalg.norm(EOSIN)
    return np.clip(IO * np.exp(-od), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def nuclei():
    centres = [(r, c) for r in range(20, 128, 30) for c in range(20, 128, 30)]
    return disk_instances((128, 128), centres, 8)


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_baselines_find_separated_nuclei(method, nuclei):
    prediction = BASELINES[method](synthetic_he(nuclei))
    assert prediction.dtype == np.int32
    assert evaluate_instances(nuclei, prediction)["aji"] > 0.7


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_baselines_on_a_blank_slide(method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Fiji-like pipeline warns that it skips normalisation
        prediction = BASELINES[method](np.full((32, 32, 3), 245, np.uint8))
    assert prediction.max() == 0


def test_macenko_recovers_the_stain_vectors(nuclei):
    stains = macenko_stains(synthetic_he(nuclei))
    assert np.allclose(stains[0], HAEMATOXYLIN / np.linalg.norm(HAEMATOXYLIN), atol=0.05)
    assert np.allclose(stains[1], EOSIN / np.linalg.norm(EOSIN), atol=0.05)


def test_macenko_normalisation_maps_to_the_reference(nuclei):
    reference = synthetic_he(nuclei, seed=1)
    image = synthetic_he(nuclei, seed=2)
    image[..., 0] = (image[..., 0] * 0.8).astype(np.uint8)  # a different stain hue
    before = image.copy()
    out = MacenkoNormalizer().fit(reference).transform(image)
    assert np.array_equal(image, before), "input modified in place"
    assert np.abs(out.astype(float) - reference).mean() < np.abs(image.astype(float) - reference).mean()


def test_macenko_background_tile_is_returned_unchanged():
    white = np.full((16, 16, 3), 250, np.uint8)
    with pytest.warns(UserWarning, match="stain normalisation skipped"):
        out = MacenkoNormalizer().transform(white)
    assert np.array_equal(out, white) and out is not white
