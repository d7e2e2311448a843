"""Macenko et al. 2009 stain normalisation, vectorised in numpy.

Optical density OD = -log((I + 1) / Io). Pixels with every OD channel >= ``beta`` (tissue)
give the plane of the two main eigenvectors of the OD covariance; the stain vectors are
the directions at the ``alpha`` and ``100 - alpha`` percentiles of the angle of the
projected OD in that plane (haematoxylin first: the vector with the larger red OD). The
concentrations C solve OD = C @ stains by least squares; normalising scales each
concentration's 99th percentile to the target's and rebuilds I = Io * exp(-C @ stains_t).

The default target (``REFERENCE_STAINS``, ``REFERENCE_MAX_CONCENTRATIONS``) is the H&E
reference commonly used with this method.
"""
import warnings

import numpy as np

IO = 240.0
REFERENCE_STAINS = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])
REFERENCE_MAX_CONCENTRATIONS = np.array([1.9705, 1.0308])


class BackgroundError(ValueError):
    """An image with too little tissue to estimate stain vectors from."""


def optical_density(image, io=IO):
    """OD of an RGB uint8 image, N x 3 float64 (one row per pixel)."""
    rgb = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    return -np.log((rgb + 1.0) / io)


def macenko_stains(image, alpha=1.0, beta=0.15, io=IO, min_pixels=100):
    """The 2 x 3 unit stain matrix (rows: haematoxylin, eosin) of an RGB image."""
    od = optical_density(image, io)
    tissue = od[np.all(od >= beta, axis=1)]
    if len(tissue) < min_pixels:
        raise BackgroundError(f"only {len(tissue)} tissue pixels (OD >= {beta} in every channel)")
    _, vectors = np.linalg.eigh(np.cov(tissue, rowvar=False))
    plane = vectors[:, [2, 1]]  # the two largest eigenvalues, largest first
    plane = plane * np.sign(plane.sum(axis=0))  # point into positive OD so angles stay near 0, never wrap at +-pi
    projected = tissue @ plane
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, [alpha, 100.0 - alpha])
    stains = np.stack([plane @ [np.cos(a), np.sin(a)] for a in (low, high)])
    stains *= np.sign(stains.sum(axis=1, keepdims=True))  # OD vectors point into positive space
    if stains[0, 0] < stains[1, 0]:
        stains = stains[::-1]
    return stains / np.linalg.norm(stains, axis=1, keepdims=True)


def concentrations(image, stains, io=IO):
    """Stain concentrations (N x 2) by least squares on the optical density."""
    return np.linalg.lstsq(stains.T, optical_density(image, io).T, rcond=None)[0].T


class MacenkoNormalizer:
    """Fit to a reference image (or use the default H&E reference), then transform images."""

    def __init__(self, alpha=1.0, beta=0.15, io=IO):
        self.alpha, self.beta, self.io = alpha, beta, io
        self.stains = REFERENCE_STAINS / np.linalg.norm(REFERENCE_STAINS, axis=1, keepdims=True)
        self.max_concentrations = REFERENCE_MAX_CONCENTRATIONS

    def fit(self, reference):
        self.stains = macenko_stains(reference, self.alpha, self.beta, self.io)
        self.max_concentrations = np.percentile(concentrations(reference, self.stains, self.io), 99, axis=0)
        return self

    def transform(self, image):
        """The image with the target's stain colours; a background-only image is returned unchanged."""
        image = np.asarray(image)
        try:
            stains = macenko_stains(image, self.alpha, self.beta, self.io)
        except BackgroundError as exc:
            warnings.warn(f"stain normalisation skipped: {exc}", stacklevel=2)
            return image.copy()
        source = concentrations(image, stains, self.io)
        source *= self.max_concentrations / np.maximum(np.percentile(source, 99, axis=0), 1e-6)
        rgb = self.io * np.exp(-source @ self.stains)
        return np.clip(rgb, 0, 255).reshape(image.shape).astype(np.uint8)
