"""Stain normalisation: numpy Macenko (staintools conventions), the staintools wrapper, the CLI."""
import numpy as np
import pytest
import spams
import staintools
import tifffile
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.normalize import normalize
from nuclei_tf.data import MoNuSeg
from nuclei_tf.preprocess.macenko import (
    REFERENCE_MAX_CONCENTRATIONS,
    STAINTOOLS,
    BackgroundError,
    MacenkoNormalizer,
    concentrations,
    macenko_stains,
    nonnegative_lasso,
    optical_density,
)
from nuclei_tf.preprocess.stain import stain_normalizer

from conftest import disk_instances
from test_baselines import EOSIN, HAEMATOXYLIN, synthetic_he

COMBINATIONS = [("macenko", "numpy"), ("macenko", "staintools"), ("vahadane", "staintools"), ("reinhard", "staintools")]
WHITE = np.full((32, 32, 3), 250, np.uint8)


def staintools_stains(image):
    return staintools.MacenkoStainExtractor.get_stain_matrix(image.copy())


@pytest.fixture(scope="module")
def nuclei():
    return disk_instances((96, 96), [(r, c) for r in range(16, 96, 24) for c in range(16, 96, 24)], 7)


@pytest.fixture(scope="module")
def reference(nuclei):
    return synthetic_he(nuclei, seed=1)


@pytest.fixture(scope="module")
def source(nuclei):
    image = synthetic_he(nuclei, seed=2)
    image[..., 0] = (image[..., 0] * 0.8).astype(np.uint8)  # a different stain hue
    image[0, :4] = 0  # black pixels: staintools writes 1 over them in its input
    return image


def test_max_gain_caps_each_stains_concentration_scale(source):
    free = MacenkoNormalizer()
    statistics = free.source_statistics(source)
    gain = REFERENCE_MAX_CONCENTRATIONS / statistics[1]  # target / source 99th percentile, per stain
    np.testing.assert_allclose(free.gain(statistics[1]), gain)
    capped = MacenkoNormalizer(max_gain=[gain[0] / 2, gain[1] * 2])
    np.testing.assert_allclose(capped.gain(statistics[1]), [gain[0] / 2, gain[1]])
    loose = MacenkoNormalizer(max_gain=gain * 1.01)  # above both gains: the same image, pixel for pixel
    np.testing.assert_array_equal(loose.apply(source, statistics), free.apply(source, statistics))
    halved_h = capped.apply(source, statistics)
    assert optical_density(halved_h).sum() < optical_density(free.apply(source, statistics)).sum()
    by_hand = 240.0 * np.exp(-(concentrations(source, statistics[0]) * [gain[0] / 2, gain[1]]) @ capped.stains)
    np.testing.assert_array_equal(halved_h.reshape(-1, 3), np.clip(by_hand, 0, 255).astype(np.uint8))
    for bad in ([1.0], [1.0, 0.0], [1.0, np.nan], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="max_gain must be two positive numbers"):
            MacenkoNormalizer(max_gain=bad)


def test_nonnegative_lasso_is_spams_lasso():
    rng = np.random.default_rng(0)
    stains = np.abs(rng.normal(size=(2, 3)))
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    od = np.abs(rng.normal(0.4, 0.4, size=(500, 3)))
    expected = spams.lasso(np.asfortranarray(od.T), D=np.asfortranarray(stains.T), mode=2, lambda1=0.05, pos=True)
    assert np.abs(nonnegative_lasso(od, stains, 0.05) - expected.toarray().T).max() < 1e-9


@pytest.mark.parametrize("estimate", [lambda image: macenko_stains(image, convention=STAINTOOLS), staintools_stains])
def test_known_stain_vectors_are_recovered(estimate, nuclei):
    stains = estimate(synthetic_he(nuclei))
    assert stains[0] @ (HAEMATOXYLIN / np.linalg.norm(HAEMATOXYLIN)) > 0.995
    assert stains[1] @ (EOSIN / np.linalg.norm(EOSIN)) > 0.995


@pytest.mark.parametrize("method,backend", COMBINATIONS)
def test_normalisation_moves_towards_the_reference_and_keeps_inputs(method, backend, reference, source):
    reference_before, source_before = reference.copy(), source.copy()
    out = stain_normalizer(method, backend).fit(reference).transform(source)
    assert np.array_equal(reference, reference_before) and np.array_equal(source, source_before), "input modified"
    assert out.dtype == np.uint8 and out.shape == source.shape
    assert np.abs(out.astype(float) - reference).mean() < np.abs(source.astype(float) - reference).mean()


@pytest.mark.parametrize("method,backend", COMBINATIONS)
def test_white_tile_is_returned_unchanged_with_a_warning(method, backend, reference):
    normalizer = stain_normalizer(method, backend).fit(reference)
    with pytest.warns(UserWarning, match="stain normalisation skipped"):
        out = normalizer.transform(WHITE)
    assert np.array_equal(out, WHITE) and out is not WHITE


@pytest.mark.parametrize("method,backend", COMBINATIONS)
def test_fitting_to_a_white_tile_is_an_error(method, backend):
    with pytest.raises(BackgroundError, match="tissue pixels"):
        stain_normalizer(method, backend).fit(WHITE)


def test_bad_choices_and_inputs_are_errors(reference):
    with pytest.raises(ValueError, match="unknown stain normalisation method"):
        stain_normalizer("ruifrok")
    with pytest.raises(ValueError, match="unknown backend"):
        stain_normalizer("macenko", "torch")
    with pytest.raises(ValueError, match="needs backend='staintools'"):
        stain_normalizer("vahadane", "numpy")
    with pytest.raises(RuntimeError, match="fit"):
        stain_normalizer("macenko", "staintools").transform(reference)
    with pytest.raises(ValueError, match="uint8 RGB"):
        MacenkoNormalizer().transform(reference.astype(float))


def test_numpy_macenko_reproduces_staintools_on_monuseg(monuseg_root):
    """Measured over all 43 MoNuSeg and 50 TNBC images (benchmarks/bench_stain.py): identical output.

    Here on 500 x 500 quarters of 3 images, to stay fast.
    """
    images = [record.load_image()[:500, :500] for record in MoNuSeg(monuseg_root).records()[:3]]
    ours = stain_normalizer("macenko", "numpy").fit(images[0])
    theirs = stain_normalizer("macenko", "staintools").fit(images[0])
    for image in images[1:]:
        diff = np.abs(ours.transform(image).astype(int) - theirs.transform(image))
        assert diff.mean() < 0.01 and diff.max() <= 1
    assert np.sum(ours.stains * theirs.normalizer.stain_matrix_target, axis=1).min() > 0.9999


def run_normalize(folder, reference, inputs, *options):
    """``normalize --reference folder/ref.png INPUTS --out folder/out OPTIONS`` through click's runner."""
    Image.fromarray(reference).save(folder / "ref.png")
    arguments = ["--reference", str(folder / "ref.png"), *map(str, inputs), "--out", str(folder / "out"), *options]
    return CliRunner().invoke(normalize, arguments)


def test_cli_writes_one_png_per_input(tmp_path, reference, source):
    tifffile.imwrite(tmp_path / "tile.tif", source, compression="lzw")
    Image.fromarray(np.dstack([source, np.full(source.shape[:2], 255, np.uint8)])).save(tmp_path / "slide.png")  # RGBA
    result = run_normalize(tmp_path, reference, [tmp_path / "tile.tif", tmp_path / "slide.png"])
    assert result.exit_code == 0, result.output
    expected = MacenkoNormalizer(convention="staintools").fit(reference).transform(source)
    for name in ("tile.png", "slide.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / name)), expected)


def test_cli_names_a_corrupt_input_in_one_line(tmp_path, reference):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    result = run_normalize(tmp_path, reference, [bad], "--backend", "staintools")
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {bad}: cannot be decoded as an image")


def test_cli_refuses_inputs_whose_outputs_would_collide(tmp_path, reference, source):
    for name in ("a.png", "a.tif"):
        Image.fromarray(source).save(tmp_path / name)
    result = run_normalize(tmp_path, reference, [tmp_path / "a.png", tmp_path / "a.tif"])
    assert result.exit_code == 2 and "share a file stem" in result.output
