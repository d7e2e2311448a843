"""Instance-map utilities shared by the loaders."""
import numpy as np
from scipy import ndimage

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import list_images, read_mask


def relabel_contiguous(instances):
    """Renumber the ids of an instance map to 1..N, keeping their order; 0 stays 0.

    Uses a lookup table indexed by id (one int32 output array, whole-slide friendly) when the
    largest id is at most the number of pixels, ``np.unique`` otherwise.
    """
    instances = np.asarray(instances)
    largest = int(instances.max(initial=0))
    if 0 <= instances.min(initial=0) and largest <= max(instances.size, 1):
        present = np.bincount(instances.ravel(), minlength=largest + 1) > 0
        present[0] = False
        lookup = (np.cumsum(present) * present).astype(np.int32)
        return lookup[instances]
    ids, inverse = np.unique(instances, return_inverse=True)
    offset = 0 if ids[0] == 0 else 1
    return (inverse.reshape(instances.shape) + offset).astype(np.int32)


def binary_to_instances(mask, connectivity=1):
    """Connected components of a binary mask as an int32 instance map (ids 1..N).

    ``connectivity=1`` is 4-connectivity, 2 is 8-connectivity (scipy's convention).
    """
    structure = ndimage.generate_binary_structure(2, connectivity)
    labelled, _ = ndimage.label(np.asarray(mask) > 0, structure=structure)
    return labelled.astype(np.int32)


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
