"""Instance-map utilities shared by the loaders."""
import numpy as np
from scipy import ndimage

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import list_images, read_mask


#: elements per step of :func:`map_ids` and :func:`id_counts` (numpy indexes and counts with
#: int64, 8 bytes per element, whatever the map's dtype)
MAP_CHUNK = 1 << 20


def _row_blocks(instances):
    """Views of ``instances`` a block of rows (about MAP_CHUNK elements) at a time."""
    step = max(1, MAP_CHUNK * len(instances) // max(instances.size, 1))
    return (instances[start : start + step] for start in range(0, len(instances), step))


def id_counts(instances):
    """Pixels per id of a non-negative instance map: ``np.bincount(instances.ravel())`` without
    its full-size int64 copy."""
    instances = np.atleast_1d(instances)
    counts = np.zeros(int(instances.max(initial=0)) + 1, np.int64)
    for block in _row_blocks(instances):
        counts += np.bincount(block.ravel(), minlength=len(counts))
    return counts


def map_ids(instances, lookup, copy=True):
    """``lookup[instances]``: every id of an instance map replaced by its entry in ``lookup``.
    ``copy=False`` maps the map in place when ``lookup`` has its dtype, a block of rows at a
    time, so no full-size temporary is made (whole slides)."""
    instances = np.asarray(instances)
    if copy or instances.dtype != lookup.dtype or instances.ndim == 0 or not instances.flags.writeable:
        return lookup[instances]
    for block in _row_blocks(instances):
        block[...] = lookup[block]
    return instances


def relabel_contiguous(instances, copy=True):
    """Renumber the ids of an instance map to 1..N, keeping their order; 0 stays 0.

    Uses a lookup table indexed by id (one int32 output array, whole-slide friendly) when the
    largest id is at most the number of pixels, ``np.unique`` otherwise. ``copy=False``
    renumbers an int32 map in place (:func:`map_ids`).
    """
    instances = np.asarray(instances)
    largest = int(instances.max(initial=0))
    if 0 <= instances.min(initial=0) and largest <= max(instances.size, 1):
        present = id_counts(instances) > 0
        present[0] = False
        return map_ids(instances, (np.cumsum(present) * present).astype(np.int32), copy)
    ids, inverse = np.unique(instances, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1
    return (inverse.reshape(instances.shape) + offset).astype(np.int32)


def binary_to_instances(mask, connectivity=1):
    """Connected components of a binary mask as an int32 instance map (ids 1..N).

    ``connectivity=1`` is 4-connectivity, 2 is 8-connectivity (scipy's convention).
    """
    structure = ndimage.generate_binary_structure(2, connectivity)
    mask = np.asarray(mask)
    labelled, _ = ndimage.label(mask if mask.dtype == bool else mask > 0, structure=structure)
    return labelled.astype(np.int32, copy=False)


def read_mask_folder(folder, shape):
    """Merge one-nucleus-per-file binary masks into an int32 instance map (ids in file order).

    Masks may be grey, RGB or RGBA with equal channels (:func:`~nuclei_tf.data.io.read_mask`).
    Where masks overlap (rare in DSB), the later file wins; the merged map keeps ids 1..N
    for the masks that still own pixels.
    """
    instances = np.zeros(shape[:2], dtype=np.int32)
    for index, path in enumerate(list_images(folder), start=1):
        mask = read_mask(path)
        if mask.shape != instances.shape:
            raise DataError(path, f"mask size {mask.shape} does not match image size {instances.shape}")
        instances[mask] = index
    return relabel_contiguous(instances)
