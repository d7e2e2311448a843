"""Tissue detection on a low-resolution level (thumbnail) of a whole slide, so that prediction
skips the tiles of white background.

:func:`tissue_mask` follows the usual recipe of whole-slide pipelines: an Otsu (1979) threshold
on the HSV saturation channel, combined with an optical-density criterion (Beer-Lambert, as in
:mod:`nuclei_tf.preprocess.macenko`), a small morphological closing, holes filled and small
components removed. The rule that keeps it well behaved on slides with little or no background:

* tissue = saturation S > t  AND  OD sum >= ``OD_FLOOR`` (not white)  AND  HSV value V >=
  ``DARK_VALUE`` (not black: scanner padding has a huge OD but no colour, and the saturation of
  near-black JPEG noise is meaningless);
* t = Otsu(S of the non-dark pixels), clipped to [``SATURATION_FLOOR``, ``SATURATION_CEILING``];
  t = ``SATURATION_CEILING`` when S is constant (Otsu undefined).

Otsu only ever *lowers* the fixed ceiling: on a slide with glass and tissue its histogram is
bimodal and Otsu falls between the modes (usually above the ceiling, so the ceiling decides;
with pale staining it falls lower and Otsu keeps the pale tissue). On a thumbnail that is all
tissue the histogram is unimodal (or bimodal haematoxylin / eosin) and Otsu would cut the tissue
in half: the ceiling prevents that. The floor keeps the faint colour noise of glass out when
Otsu splits a background-only histogram.

:class:`TissueMap` answers "which fraction of this full-resolution box is tissue" in constant
time from a summed-area table (Crow 1984), for every tile of a slide.
"""
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.filters import threshold_otsu

from nuclei_tf.postprocess.morphology import fill_holes, remove_small_objects
from nuclei_tf.preprocess.macenko import STAINTOOLS, optical_density, rgb_uint8

SATURATION_FLOOR = 15  #: lowest saturation threshold (OpenCV 8-bit HSV, 0..255)
SATURATION_CEILING = 30  #: highest saturation threshold: Otsu may only lower it
OD_FLOOR = 0.15  #: minimum OD summed over R, G, B (Io = 255): pure white is 0
DARK_VALUE = 40  #: pixels whose brightest channel is below this are black padding, not tissue
CLOSING_RADIUS = 2  #: radius in thumbnail pixels of the elliptical closing element


def _saturation_threshold(saturation, candidates):
    """Otsu threshold of ``saturation[candidates]`` clipped to the floor and ceiling (see module)."""
    values = saturation[candidates]
    if values.size == 0 or values.min() == values.max():
        return SATURATION_CEILING
    return int(np.clip(threshold_otsu(values), SATURATION_FLOOR, SATURATION_CEILING))


def tissue_mask(thumbnail, min_area_fraction=1e-3):
    """Boolean (h, w) tissue mask of an RGB uint8 thumbnail of a whole slide.

    Saturation (Otsu, guarded) AND not white (OD) AND not black, closed with a small ellipse,
    holes filled (lumens inside tissue count as tissue), then connected components (8-connected)
    smaller than ``min_area_fraction`` of the thumbnail removed. See the module docstring.
    """
    thumbnail = rgb_uint8(thumbnail)
    height, width = thumbnail.shape[:2]
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=bool)
    hsv = cv2.cvtColor(thumbnail, cv2.COLOR_RGB2HSV)
    saturation, value = hsv[..., 1], hsv[..., 2]
    not_dark = value >= DARK_VALUE
    not_white = optical_density(thumbnail, STAINTOOLS).sum(axis=1).reshape(height, width) >= OD_FLOOR
    mask = (saturation > _saturation_threshold(saturation, not_dark)) & not_dark & not_white
    size = 2 * CLOSING_RADIUS + 1
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, element) > 0  # border pixels kept
    mask = fill_holes(mask)
    components, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    min_size = int(np.ceil(min_area_fraction * height * width))
    return remove_small_objects(components, min_size, copy=False) > 0


class TissueMap:
    """Tissue fraction of full-resolution boxes from a thumbnail mask, in constant time per box.

    ``scale``: full-resolution pixels per mask pixel (float). Mask pixel (r, c) covers the
    full-resolution square [c * scale, (c + 1) * scale) x [r * scale, (r + 1) * scale); a box
    covering mask pixels partially counts them by the area it covers (exact, not rounded), and
    the part of a box outside the mask counts as background. The summed-area table (Crow 1984)
    is built once; the integral of the piecewise-constant mask up to a real point is the bilinear
    interpolation of that table, so each box costs 4 interpolations.
    """

    def __init__(self, mask, scale):
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.mask, self.scale = mask, float(scale)
        self.table = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.float64)
        self.table[1:, 1:] = mask.cumsum(axis=0, dtype=np.int64).cumsum(axis=1)
        self.kept_fraction = float(mask.mean()) if mask.size else 0.0  #: tissue fraction of the whole mask

    def _integral(self, u, v):
        """Tissue area of the mask over [0, u) x [0, v) (mask units; u: columns, v: rows)."""
        height, width = self.mask.shape
        u, v = np.clip(u, 0.0, width), np.clip(v, 0.0, height)
        i, j = np.minimum(np.floor(u), width - 1).astype(np.intp), np.minimum(np.floor(v), height - 1).astype(np.intp)
        fu, fv = u - i, v - j
        t = self.table
        return ((t[j, i] * (1 - fu) + t[j, i + 1] * fu) * (1 - fv)
                + (t[j + 1, i] * (1 - fu) + t[j + 1, i + 1] * fu) * fv)

    def fractions(self, x, y, width, height):
        """Vectorised :meth:`fraction`: arrays (broadcast together) of boxes, array of fractions."""
        x, y, width, height = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, y, width, height)))
        if self.mask.size == 0:
            return np.zeros(x.shape)
        x0, y0 = x / self.scale, y / self.scale
        x1, y1 = (x + width) / self.scale, (y + height) / self.scale
        area = np.where((x1 > x0) & (y1 > y0), (x1 - x0) * (y1 - y0), 0.0)
        inside = (self._integral(x1, y1) - self._integral(x0, y1) - self._integral(x1, y0) + self._integral(x0, y0))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(area > 0, np.clip(inside / np.where(area > 0, area, 1.0), 0.0, 1.0), 0.0)

    def _integral_scalar(self, u, v):
        """:meth:`_integral` for one point in plain Python floats (a few microseconds)."""
        height, width = self.mask.shape
        u, v = min(max(u, 0.0), width), min(max(v, 0.0), height)
        i, j = min(math.floor(u), width - 1), min(math.floor(v), height - 1)
        fu, fv = u - i, v - j
        item = self.table.item
        return ((item(j, i) * (1 - fu) + item(j, i + 1) * fu) * (1 - fv)
                + (item(j + 1, i) * (1 - fu) + item(j + 1, i + 1) * fu) * fv)

    def fraction(self, x, y, width, height):
        """Tissue fraction (0..1) of the box at full-resolution (x, y) of size width x height; 0 for an empty box."""
        x0, y0 = x / self.scale, y / self.scale
        x1, y1 = (x + width) / self.scale, (y + height) / self.scale
        area = (x1 - x0) * (y1 - y0)
        if not (x1 > x0 and y1 > y0) or self.mask.size == 0:
            return 0.0
        f = self._integral_scalar
        return min(max((f(x1, y1) - f(x0, y1) - f(x1, y0) + f(x0, y0)) / area, 0.0), 1.0)


def region_tissue_mm2(box, mpp, tissue_map=None):
    """mm^2 of tissue in the level-0 ``box`` (x, y, w, h) at ``mpp`` um/px: its area times its
    tissue fraction on ``tissue_map`` (all of it without one)."""
    x, y, w, h = box
    fraction = tissue_map.fraction(x, y, w, h) if tissue_map is not None else 1.0
    return w * h * fraction * mpp**2 / 1e6


def tissue_png_path(path):
    """``<stem>.tissue.png`` next to ``path`` (a path already ending in .tissue.png is kept)."""
    path = Path(path)
    return path if path.name.endswith(".tissue.png") else path.with_name(f"{path.stem}.tissue.png")


def save_tissue_png(mask, path, thumbnail=None):
    """Write the mask as ``<stem>.tissue.png`` (see :func:`tissue_png_path`); return that path.

    Without a thumbnail: tissue white on black. With one (resized to the mask if needed): the
    thumbnail with the background darkened and the tissue outlined in green.
    """
    mask = np.asarray(mask, dtype=bool)
    target = tissue_png_path(path)
    if thumbnail is None:
        picture = mask.astype(np.uint8) * 255
    else:
        picture = rgb_uint8(thumbnail)
        if picture.shape[:2] != mask.shape:
            picture = cv2.resize(picture, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA)
        picture = np.where(mask[..., None], picture, (picture * 0.35).astype(np.uint8))
        outline = mask & ~(cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
        picture[outline] = (0, 200, 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(target)
    return target
