"""Macenko et al. 2009 stain normalisation, vectorised in numpy.

Optical density OD = -log(I / Io) (Beer-Lambert). The tissue pixels' OD gives the plane of
the two main eigenvectors of its covariance; the stain vectors are the directions at the
``alpha`` and ``100 - alpha`` percentiles of the angle of the projected OD in that plane
(haematoxylin first: the vector with the larger red OD). The concentrations C solve
OD = C @ stains; normalising scales each concentration's 99th percentile to the target's
and rebuilds I = Io * exp(-C @ stains_target).

That scaling (the *gain*, target / source 99th percentile, one per stain) assumes the image
holds nuclei at full strength. On faint tissue with few nuclei (fat, stroma) it amplifies
cytoplasm and background up to 5x into nucleus-like blobs (haematoxylin gains 1.6-5.6 on
TNBC against 0.55-1.94 on the lagree2021 training split). ``max_gain`` caps each stain's gain, e.g. at the
largest one seen on the training images (``calibrate`` records it in the model folder).

The paper leaves the details open; a :class:`Convention` fixes them:

* ``CLASSIC`` (default, as the usual reference implementation): Io = 240,
  OD = -log((I + 1) / Io), tissue = every OD channel >= 0.15, C by least squares.
* ``STAINTOOLS`` (as staintools 2.1): Io = 255, OD = max(-log(max(I, 1) / Io), 1e-6),
  tissue = CIELAB lightness L < 0.8, C by the non-negative lasso with penalty 0.01, solved
  here in closed form. On real MoNuSeg images it reproduces staintools to the grey level.

The default target (``REFERENCE_STAINS``, ``REFERENCE_MAX_CONCENTRATIONS``) is the H&E
reference commonly used with this method.
"""
import functools
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

IO = 240.0
REFERENCE_STAINS = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])
REFERENCE_MAX_CONCENTRATIONS = np.array([1.9705, 1.0308])


class BackgroundError(ValueError):
    """An image with too little tissue to estimate stain vectors from."""


@dataclass(frozen=True)
class Convention:
    """The choices an implementation of Macenko et al. 2009 makes beyond the paper."""

    io: float  #: incident light Io
    offset: int  #: OD = max(-log(max(I + offset, 1) / Io), od_floor)
    od_floor: float
    tissue: str  #: "od": every OD channel >= threshold; "luminosity": CIELAB L / 255 < threshold
    threshold: float
    lasso: float | None  #: None: least squares; else the penalty of a non-negative lasso

    @functools.cached_property
    def od_table(self):
        """OD of each 8-bit intensity 0..255."""
        levels = np.maximum(np.arange(256.0) + self.offset, 1.0)
        return np.maximum(-np.log(levels / self.io), self.od_floor)


CLASSIC = Convention(io=IO, offset=1, od_floor=-np.inf, tissue="od", threshold=0.15, lasso=None)
STAINTOOLS = Convention(io=255.0, offset=0, od_floor=1e-6, tissue="luminosity", threshold=0.8, lasso=0.01)
CONVENTIONS = {"classic": CLASSIC, "staintools": STAINTOOLS}


def rgb_uint8(image):
    """``image`` as an H x W x 3 uint8 array; anything else is a ValueError."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB image, got {image.dtype} of shape {image.shape}")
    return image


def optical_density(image, convention=CLASSIC):
    """OD of an RGB uint8 image, N x 3 float64 (one row per pixel).

    A transposed view of contiguous channel rows: ``od.T`` (3 x N) is what the functions below
    compute with, since numpy reduces and partitions contiguous rows several times faster.
    """
    return convention.od_table[rgb_uint8(image).reshape(-1, 3).T].T


def tissue_mask(image, convention=CLASSIC, od=None):
    """Flat boolean mask of the pixels that count as tissue (not background)."""
    if convention.tissue == "luminosity":
        lightness = cv2.cvtColor(rgb_uint8(image), cv2.COLOR_RGB2LAB)[..., 0].reshape(-1)
        return (np.arange(256) / 255.0 < convention.threshold)[lightness]
    od = optical_density(image, convention) if od is None else od
    return od.T.min(axis=0) >= convention.threshold


def require_tissue(image, convention=CLASSIC, min_pixels=100, od=None):
    """The tissue mask, or BackgroundError when it holds fewer than ``min_pixels`` pixels."""
    mask = tissue_mask(image, convention, od)
    found = np.count_nonzero(mask)
    if found < min_pixels:
        raise BackgroundError(f"only {found} tissue pixels ({convention.tissue} mask), {min_pixels} needed")
    return mask


def macenko_stains(image, alpha=1.0, convention=CLASSIC, min_pixels=100, od=None):
    """The 2 x 3 unit stain matrix (rows: haematoxylin, eosin) of an RGB uint8 image."""
    od = optical_density(image, convention) if od is None else od
    tissue = np.compress(require_tissue(image, convention, min_pixels, od), od.T, axis=1)  # 3 x M
    _, vectors = np.linalg.eigh(np.cov(tissue))
    plane = vectors[:, [2, 1]]  # the two largest eigenvalues, largest first
    plane = plane * np.sign(plane.sum(axis=0))  # point into positive OD so angles stay near 0, never wrap at +-pi
    x, y = plane.T @ tissue
    low, high = np.percentile(np.arctan2(y, x), [alpha, 100.0 - alpha])
    stains = np.stack([plane @ [np.cos(a), np.sin(a)] for a in (low, high)])
    stains *= np.sign(stains.sum(axis=1, keepdims=True))  # OD vectors point into positive space
    if stains[0, 0] < stains[1, 0]:
        stains = stains[::-1]
    return stains / np.linalg.norm(stains, axis=1, keepdims=True)


def nonnegative_lasso(od, stains, penalty):
    """argmin_{C >= 0} 0.5 ||OD - C @ stains||^2 + penalty * sum(C) for every row, exactly (N x 2).

    With two stains the optimum is the unconstrained solution when it is non-negative, else
    the better of the two one-stain solutions (a convex problem has no other candidates):
    the problem spams.lasso(mode=2, pos=True) solves for staintools, without iterations.
    """
    gram = stains @ stains.T
    h, e = stains @ od.T - penalty
    inverse = np.linalg.inv(gram)
    both_h, both_e = inverse[0, 0] * h + inverse[0, 1] * e, inverse[1, 0] * h + inverse[1, 1] * e
    only_h, only_e = np.maximum(h / gram[0, 0], 0.0), np.maximum(e / gram[1, 1], 0.0)
    h_wins = only_h**2 * gram[0, 0] >= only_e**2 * gram[1, 1]  # the larger objective decrease
    both = (both_h >= 0.0) & (both_e >= 0.0)
    h = np.where(both, both_h, np.where(h_wins, only_h, 0.0))
    e = np.where(both, both_e, np.where(h_wins, 0.0, only_e))
    return np.stack([h, e]).T


def concentrations(image, stains, convention=CLASSIC, od=None):
    """Stain concentrations (N x 2) of an RGB uint8 image for a 2 x 3 stain matrix."""
    od = optical_density(image, convention) if od is None else od
    if convention.lasso is None:
        return (np.linalg.pinv(stains).T @ od.T).T  # least squares
    return nonnegative_lasso(od, stains, convention.lasso)


def unchanged_on_background(transform):
    """Make ``transform(self, image)`` warn and return a copy of a background-only image."""

    @functools.wraps(transform)
    def wrapper(self, image):
        try:
            return transform(self, image)
        except BackgroundError as exc:
            warnings.warn(f"stain normalisation skipped: {exc}", stacklevel=2)
            return np.array(image, copy=True)

    return wrapper


def _max_concentrations(values):
    """Each stain's 99th-percentile concentration."""
    return np.percentile(values.T, 99, axis=1)


class MacenkoNormalizer:
    """Fit to a reference image (or use the default H&E reference), then transform images.

    ``convention``: ``"classic"`` (default), ``"staintools"`` or a :class:`Convention`;
    ``max_gain``: None, or the (haematoxylin, eosin) caps on the concentration gains.
    """

    def __init__(self, alpha=1.0, convention="classic", min_pixels=100, max_gain=None):
        self.alpha, self.min_pixels = alpha, min_pixels
        if max_gain is not None:
            max_gain = np.asarray(max_gain, dtype=np.float64)
            if max_gain.shape != (2,) or not np.all(np.isfinite(max_gain)) or np.any(max_gain <= 0):
                raise ValueError(f"max_gain must be two positive numbers (haematoxylin, eosin), got {max_gain.tolist()}")
        self.max_gain = max_gain
        self.convention = CONVENTIONS[convention] if isinstance(convention, str) else convention
        self.stains = REFERENCE_STAINS / np.linalg.norm(REFERENCE_STAINS, axis=1, keepdims=True)
        self.max_concentrations = REFERENCE_MAX_CONCENTRATIONS

    def _stains_and_concentrations(self, image):
        od = optical_density(image, self.convention)
        stains = macenko_stains(image, self.alpha, self.convention, self.min_pixels, od)
        return stains, concentrations(image, stains, self.convention, od)

    def fit(self, reference):
        """Take the target stains and 99th-percentile concentrations from ``reference``."""
        self.stains, target = self._stains_and_concentrations(reference)
        self.max_concentrations = _max_concentrations(target)
        return self

    def gain(self, source_max):
        """Each stain's concentration scale, target / source 99th percentile, capped at ``max_gain``."""
        gain = self.max_concentrations / np.maximum(source_max, 1e-6)
        return gain if self.max_gain is None else np.minimum(gain, self.max_gain)

    def _recolour(self, source, source_max, shape):
        """Scale source concentrations by :meth:`gain` and rebuild RGB with the target stains."""
        source = source * self.gain(source_max)
        rgb = self.convention.io * np.exp(-source @ self.stains)
        return np.clip(rgb, 0, 255).reshape(shape).astype(np.uint8)

    @unchanged_on_background
    def transform(self, image):
        """The image with the target's stain colours; a background-only image is returned unchanged."""
        image = rgb_uint8(image)
        _, source = self._stains_and_concentrations(image)
        return self._recolour(source, _max_concentrations(source), image.shape)

    def source_statistics(self, image):
        """(stain matrix, 99th-percentile concentrations) of an image, e.g. of a sub-sample of a
        whole slide, for :meth:`apply` to normalise it tile by tile in bounded memory."""
        stains, source = self._stains_and_concentrations(rgb_uint8(image))
        return stains, _max_concentrations(source)

    def apply(self, image, statistics):
        """Normalise ``image`` (a tile) with :meth:`source_statistics` computed beforehand."""
        image = rgb_uint8(image)
        stains, source_max = statistics
        return self._recolour(concentrations(image, stains, self.convention), source_max, image.shape)
