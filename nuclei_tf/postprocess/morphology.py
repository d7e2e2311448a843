"""Binary clean-up after thresholding (Lagree et al. 2021: "filled missing pixels and removed
small predicted artifacts")."""
import numpy as np
from scipy import ndimage

from nuclei_tf.data.labels import id_counts, map_ids


def fill_holes(mask):
    """Fill background regions not connected to the image border."""
    return ndimage.binary_fill_holes(np.asarray(mask, dtype=bool))


def remove_small_objects(instances, min_size, copy=True):
    """Zero every instance with fewer than ``min_size`` pixels; other ids are unchanged.

    ``copy=False`` edits ``instances`` in place (no second full-size array on whole slides).
    """
    instances = np.asarray(instances)
    if min_size <= 1 or instances.max(initial=0) == 0:
        return instances.copy() if copy else instances
    counts = id_counts(instances)
    lookup = np.arange(len(counts), dtype=instances.dtype)
    lookup[counts < min_size] = 0
    return map_ids(instances, lookup, copy)
