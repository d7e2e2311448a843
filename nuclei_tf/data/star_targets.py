"""StarDist's targets (Schmidt et al. 2018, MICCAI, section 2; Weigert et al. 2020): for every
nucleus pixel, its distances along :data:`N_RAYS` equally spaced rays to the edge of its own
nucleus (a star-convex polygon around the pixel), and an object probability, the pixel's
Euclidean distance to the nearest pixel outside its nucleus divided by the largest such
distance in the nucleus (1 at its centre, small at its edge). Background is 0.

A ray leaves the nucleus at the first whole step ``t`` (1 px along the ray, the position rounded
to the nearest pixel) that lands on another label or outside the image; its distance is
``t - 0.5``, half-way between the last pixel inside and the first outside. Ray ``k`` points at
angle ``2 pi k / n`` from the +x (column) axis towards +y (rows down), so a horizontal flip turns
ray ``k`` into ray ``n/2 - k`` and a vertical flip into ``-k`` (mod n): targets built from the
augmented instance map follow every flip and rotation.
"""
import numpy as np
from scipy import ndimage

#: rays per pixel (StarDist's default)
N_RAYS = 32
#: channels of the rays head and its targets: the ray distances, then the object probability
RAY_CHANNELS = N_RAYS + 1
RAY_DISTANCES = slice(0, N_RAYS)


def ray_angles(n_rays=N_RAYS):
    """Float64 (n,) angles of the rays, ``2 pi k / n``."""
    return 2.0 * np.pi * np.arange(n_rays) / n_rays


def view_channels(turns, flip, n_rays=N_RAYS):
    """Int (n_rays + 1,) channel indices that put outputs of a view back in the image's frame: for a
    view ``np.rot90(image, turns)`` then (``flip``) flipped left-right, whose outputs have been
    turned and flipped back, ray ``k`` of the image is the view's ray ``k - n/4 turns`` (``n/2``
    minus that when flipped); the object probability stays last."""
    rays = (np.arange(n_rays) - (n_rays // 4) * turns) % n_rays
    rays = (n_rays // 2 - rays) % n_rays if flip else rays
    return np.append(rays, n_rays)


def star_distances(instances, n_rays=N_RAYS):
    """Float32 (H, W, n_rays) ray distances (px) of an int instance map (0 = background)."""
    instances = np.ascontiguousarray(instances)
    if instances.ndim != 2:
        raise ValueError(f"an instance map is H x W, got shape {instances.shape}")
    from nuclei_tf.data.ray_march import march  # numba, imported on first use

    angles = ray_angles(n_rays)
    directions = np.stack([np.sin(angles), np.cos(angles)], axis=1)
    out = np.zeros(instances.shape + (n_rays,), np.float32)
    march(instances.astype(np.int64, copy=False), directions, out)
    return out


def object_probabilities(instances):
    """Float32 (H, W): each nucleus pixel's distance to the nearest pixel outside its nucleus (the
    image's edge counts as outside), over the largest in its nucleus."""
    instances = np.asarray(instances)
    probability = np.zeros(instances.shape, np.float32)
    for label, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:
            continue
        inside = np.pad(instances[box] == label, 1)
        distance = ndimage.distance_transform_edt(inside)[1:-1, 1:-1]
        own = inside[1:-1, 1:-1]
        probability[box][own] = distance[own] / distance.max()
    return probability


def star_targets(instances, n_rays=N_RAYS):
    """Float32 (H, W, n_rays + 1) targets of the rays head: the distances, then the object
    probability (the channel order of :mod:`nuclei_tf.models.heads`)."""
    return np.concatenate([star_distances(instances, n_rays), object_probabilities(instances)[..., None]], axis=-1)
