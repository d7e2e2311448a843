"""U-Net weight maps (Ronneberger et al. 2015, eq. 2), used by Lagree et al. 2021's weighted
cross-entropy (their eq. 2):

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

d1, d2: distances from background pixel x to the nearest and second-nearest nucleus,
measured on the *instance* map (so touching nuclei stay two nuclei). The border term is
added on background pixels, where it separates touching nuclei; w_c balances the classes,
w_c(k) = N / (2 N_k) for background and foreground (1 everywhere when a class is absent).

Exact and fast: the border term is below ``tolerance`` wherever d1 + d2 > R =
sigma * sqrt(2 ln(w0 / tolerance)), so each nucleus's distance transform is computed only
in its bounding box grown by R, which holds every pixel with d < R exactly.
"""
import numpy as np
from scipy import ndimage


def class_balance(instances):
    """w_c: N / (2 N_k) for background and foreground pixels (all ones if either is absent)."""
    foreground = instances > 0
    n_fg = int(foreground.sum())
    n_bg = foreground.size - n_fg
    if n_fg == 0 or n_bg == 0:
        return np.ones(instances.shape, dtype=np.float32)
    weights = np.where(foreground, foreground.size / (2.0 * n_fg), foreground.size / (2.0 * n_bg))
    return weights.astype(np.float32)


def two_nearest_distances(instances, radius):
    """Per pixel, the distances (d1 <= d2) to its two nearest nuclei; inf beyond ``radius``."""
    height, width = instances.shape
    d1 = np.full(instances.shape, np.inf)
    d2 = np.full(instances.shape, np.inf)
    margin = int(np.ceil(radius)) + 1
    for label, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:
            continue
        rows = slice(max(box[0].start - margin, 0), min(box[0].stop + margin, height))
        cols = slice(max(box[1].start - margin, 0), min(box[1].stop + margin, width))
        distance = ndimage.distance_transform_edt(instances[rows, cols] != label)
        distance[distance > radius] = np.inf
        near1, near2 = d1[rows, cols], d2[rows, cols]
        d2[rows, cols] = np.minimum(near2, np.maximum(near1, distance))
        d1[rows, cols] = np.minimum(near1, distance)
    return d1, d2


def weight_map(instances, w0=10.0, sigma=5.0, tolerance=1e-4):
    """The float32 H x W weight map of an int instance map (0 = background)."""
    instances = np.asarray(instances)
    if instances.ndim != 2 or not np.issubdtype(instances.dtype, np.integer):
        raise ValueError(f"expected a 2-D integer instance map, got {instances.dtype} {instances.shape}")
    weights = class_balance(instances)
    if w0 <= 0 or instances.max(initial=0) == 0:
        return weights
    radius = sigma * np.sqrt(2.0 * np.log(w0 / tolerance))
    d1, d2 = two_nearest_distances(instances, radius)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))
    background = instances == 0
    weights[background] += border[background].astype(np.float32)
    return weights
