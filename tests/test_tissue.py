"""Tissue detection on whole-slide thumbnails and the tissue fraction of full-resolution boxes."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from nuclei_tf.preprocess.tissue import TissueMap, save_tissue_png, tissue_mask, tissue_png_path

from conftest import SHARED_DATA

SAMPLE = Path(__file__).resolve().parents[1] / "nuclei_tf" / "data" / "sample" / "breast_sample.png"
CMU = SHARED_DATA / "WSI" / "cmu-1-small-region.svs"


def he_crop(height, width):
    """The real H&E sample resized like a thumbnail level (area interpolation)."""
    sample = np.asarray(Image.open(SAMPLE).convert("RGB"))
    return cv2.resize(sample, (width, height), interpolation=cv2.INTER_AREA)


def pasted(shape=(200, 240), box=(50, 60, 90, 110)):
    """White glass (with faint noise) and the H&E crop pasted at box = (row, col, height, width)."""
    rng = np.random.default_rng(0)
    thumbnail = rng.integers(247, 256, size=(*shape, 3), dtype=np.uint8)
    r, c, h, w = box
    thumbnail[r:r + h, c:c + w] = he_crop(h, w)
    truth = np.zeros(shape, dtype=bool)
    truth[r:r + h, c:c + w] = True
    return thumbnail, truth


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_blob_on_white_found_and_background_excluded():
    thumbnail, truth = pasted()
    mask = tissue_mask(thumbnail)
    assert mask.dtype == bool and mask.shape == truth.shape
    assert iou(mask, truth) > 0.9
    assert mask[~truth].mean() < 0.01


def test_all_white_and_all_black_are_empty():
    assert not tissue_mask(np.full((64, 80, 3), 255, dtype=np.uint8)).any()
    assert not tissue_mask(np.full((64, 80, 3), 128, dtype=np.uint8)).any()  # grey, no colour
    assert not tissue_mask(np.zeros((64, 80, 3), dtype=np.uint8)).any()
    assert not tissue_mask(np.zeros((0, 0, 3), dtype=np.uint8)).any()


def test_all_tissue_is_kept():
    assert tissue_mask(he_crop(128, 128)).mean() > 0.95
    assert tissue_mask(np.asarray(Image.open(SAMPLE).convert("RGB"))).mean() > 0.95  # full resolution too


def test_black_padding_excluded():
    thumbnail, truth = pasted()
    thumbnail[:, 200:] = 0  # scanner padding
    rng = np.random.default_rng(1)
    thumbnail[180:, :] = rng.integers(0, 12, size=(20, 240, 3), dtype=np.uint8)  # noisy near-black (JPEG)
    mask = tissue_mask(thumbnail)
    assert not mask[:, 200:].any() and not mask[180:].any()
    assert iou(mask, truth) > 0.9


def test_hole_inside_tissue_is_filled_and_small_specks_removed():
    thumbnail, truth = pasted()
    thumbnail[80:110, 95:130] = 255  # a lumen inside the blob
    thumbnail[10:13, 10:13] = (120, 60, 150)  # a speck of 9 px, below 1e-3 of 48000 px
    mask = tissue_mask(thumbnail)
    assert mask[80:110, 95:130].all()
    assert not mask[:20, :20].any()
    assert tissue_mask(thumbnail, min_area_fraction=0)[11, 11]


def slow_fraction(mask, scale, x, y, width, height):
    """Area-weighted mean of the mask under the box, mask pixels as squares of side ``scale``."""
    rows, cols = mask.shape
    x0, x1, y0, y1 = x / scale, (x + width) / scale, y / scale, (y + height) / scale
    edges_c, edges_r = np.arange(cols), np.arange(rows)
    overlap_c = np.clip(np.minimum(x1, edges_c + 1) - np.maximum(x0, edges_c), 0, None)
    overlap_r = np.clip(np.minimum(y1, edges_r + 1) - np.maximum(y0, edges_r), 0, None)
    return float((mask * np.outer(overlap_r, overlap_c)).sum() / ((x1 - x0) * (y1 - y0)))


@pytest.mark.parametrize("scale", [1.0, 4.0, 7.37])
def test_tissue_map_matches_slow_mean(scale):
    rng = np.random.default_rng(2)
    mask = rng.random((37, 53)) < 0.4
    tissue = TissueMap(mask, scale)
    assert tissue.kept_fraction == pytest.approx(mask.mean())
    height, width = mask.shape[0] * scale, mask.shape[1] * scale
    for _ in range(200):  # boxes inside, partly outside and entirely outside
        x, y = rng.uniform(-0.3 * width, 1.1 * width), rng.uniform(-0.3 * height, 1.1 * height)
        w, h = rng.uniform(0.5, 0.6 * width), rng.uniform(0.5, 0.6 * height)
        expected = slow_fraction(mask, scale, x, y, w, h)
        assert tissue.fraction(x, y, w, h) == pytest.approx(expected, abs=1e-9)
    xs, ys = rng.uniform(-width, width, 50), rng.uniform(-height, height, 50)
    np.testing.assert_allclose(tissue.fractions(xs, ys, 30.0, 20.0),
                               [slow_fraction(mask, scale, x, y, 30.0, 20.0) for x, y in zip(xs, ys)], atol=1e-9)


def test_tissue_map_aligned_boxes_and_edge_cases():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:6, 3:9] = True
    tissue = TissueMap(mask, 4)
    assert tissue.fraction(12, 8, 24, 16) == 1.0  # exactly the tissue block
    assert tissue.fraction(0, 0, 40, 40) == pytest.approx(mask.mean())
    assert tissue.fraction(0, 0, 80, 40) == pytest.approx(mask.mean() / 2)  # half outside: background
    assert tissue.fraction(100, 100, 16, 16) == 0.0
    assert tissue.fraction(12, 8, 0, 16) == 0.0  # empty box
    assert tissue.fraction(12, 8, -4, 16) == 0.0
    with pytest.raises(ValueError):
        TissueMap(mask, 0)


def test_save_tissue_png(tmp_path):
    thumbnail, _ = pasted()
    mask = tissue_mask(thumbnail)
    written = save_tissue_png(mask, tmp_path / "slide.svs")
    assert written == tmp_path / "slide.tissue.png" and tissue_png_path(written) == written
    plain = np.asarray(Image.open(written))
    assert plain.shape == mask.shape and ((plain > 0) == mask).all()
    overlay = np.asarray(Image.open(save_tissue_png(mask, tmp_path / "out" / "slide.tissue.png", thumbnail)))
    assert overlay.shape == (*mask.shape, 3)
    assert (overlay[~mask] <= thumbnail[~mask]).all() and overlay[~mask].mean() < 0.5 * thumbnail[~mask].mean()
    small = np.asarray(Image.open(save_tissue_png(mask[::2, ::2], tmp_path / "half.png", thumbnail)))
    assert small.shape == (100, 120, 3)  # thumbnail resized to the mask


def test_real_slide_region_thumbnail():
    if not CMU.is_file():
        pytest.skip(f"whole-slide sample not found at {CMU} (set NUCLEI_TF_DATA to the folder holding WSI/)")
    openslide = pytest.importorskip("openslide", reason="openslide-python is not installed")
    with openslide.OpenSlide(str(CMU)) as slide:
        thumbnail = np.asarray(slide.get_thumbnail((512, 512)).convert("RGB"))
        scale = slide.dimensions[0] / thumbnail.shape[1]
    mask = tissue_mask(thumbnail)
    tissue = TissueMap(mask, scale)
    print(f"cmu-1-small-region: tissue fraction {tissue.kept_fraction:.3f} of a {thumbnail.shape} thumbnail")
    assert 0.3 < tissue.kept_fraction < 0.55  # measured 0.393: a strip of skin on glass
    assert mask[:, : mask.shape[1] // 5].mean() < 0.05  # the left fifth is glass (but a thin strand)
    assert tissue.fraction(0, 0, 256, 256) == 0.0  # top-left tile: glass
