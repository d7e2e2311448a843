"""HoVer-Net's horizontal and vertical distance maps (Graham et al. 2019, Med. Image Anal.,
section 3.2 and fig. 3): each nucleus pixel's horizontal (x) and vertical (y) distance to its
nucleus's centre of mass, scaled per nucleus and per side to [-1, 1]: negative distances divided
by the largest negative one's magnitude, positive ones by the largest positive one (so the
nucleus's leftmost pixels are -1, its rightmost +1). Background is 0.

The maps are built from the augmented instance map, so a flip or a rotation of the tile changes
their signs as it must (a horizontal flip negates h; a 90-degree turn makes one map the other).
"""
import numpy as np

#: channels of the hv head and its targets: the maps h, v, then the NP branch's background, nucleus
HV_CHANNELS = 4
HV_MAPS, HV_NUCLEUS = slice(0, 2), slice(2, 4)


def _side_scaled(distance, ids, count):
    """``distance`` (per pixel, ids > 0) divided per nucleus by its largest magnitude on each side."""
    positive = np.zeros(count, np.float64)
    negative = np.zeros(count, np.float64)
    np.maximum.at(positive, ids, np.maximum(distance, 0.0))
    np.maximum.at(negative, ids, np.maximum(-distance, 0.0))
    scale = np.where(distance > 0, positive[ids], negative[ids])
    return np.divide(distance, scale, out=np.zeros_like(distance), where=scale > 0)


def hv_maps(instances):
    """Float32 (H, W, 2) maps ``h, v`` of an int instance map (0 = background)."""
    instances = np.asarray(instances)
    if instances.ndim != 2:
        raise ValueError(f"an instance map is H x W, got shape {instances.shape}")
    maps = np.zeros(instances.shape + (2,), np.float32)
    rows, cols = np.nonzero(instances)
    if not len(rows):
        return maps
    _, ids = np.unique(instances[rows, cols], return_inverse=True)
    count = int(ids.max()) + 1
    pixels = np.bincount(ids, minlength=count).astype(np.float64)
    for channel, coordinate in enumerate((cols, rows)):
        coordinate = coordinate.astype(np.float64)
        centre = np.bincount(ids, weights=coordinate, minlength=count) / pixels
        maps[rows, cols, channel] = _side_scaled(coordinate - centre[ids], ids, count)
    return maps


def hv_targets(instances):
    """Float32 (H, W, 4) targets of the hv head: ``h, v``, then the one-hot (background, nucleus)
    of the NP branch (the channel order of :mod:`nuclei_tf.models.heads`)."""
    nucleus = (np.asarray(instances) > 0).astype(np.float32)[..., None]
    return np.concatenate([hv_maps(instances), 1.0 - nucleus, nucleus], axis=-1)
