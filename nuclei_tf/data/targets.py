"""Three-class targets (Kumar et al. 2017, IEEE TMI, the MoNuSeg paper): every pixel is
background, nucleus interior or nucleus boundary, so that a predicted boundary separates
touching nuclei.

Boundary: a nucleus pixel with a pixel of another label (background or another nucleus)
within ``width`` px (Euclidean). Touching nuclei are thus parted by a band of about 2 x
``width`` boundary pixels. Outside the map, pixels repeat the nearest edge pixel, so a tile's
cut edge is not a boundary.
"""
import numpy as np
from scipy import ndimage

#: channel order of the targets and of the three_class head
BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
THREE_CLASS_CHANNELS = 3


def disk(radius):
    """Boolean disk footprint of Euclidean ``radius`` px."""
    offsets = np.arange(-radius, radius + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2


def three_class_map(instances, width=2):
    """uint8 class map (0 background, 1 interior, 2 boundary) of an int instance map (0 = background).

    A pixel has another label within ``width`` px exactly when the minimum or the maximum label
    over the disk around it differs from its own.
    """
    instances = np.asarray(instances)
    if width < 1:
        raise ValueError(f"boundary width must be >= 1 px, got {width}")
    footprint = disk(width)
    nucleus = instances > 0
    other = ndimage.maximum_filter(instances, footprint=footprint, mode="nearest") != instances
    other |= ndimage.minimum_filter(instances, footprint=footprint, mode="nearest") != instances
    classes = nucleus.astype(np.uint8) * INTERIOR
    classes[nucleus & other] = BOUNDARY
    return classes


def three_class_targets(instances, width=2):
    """Float32 one-hot (H, W, 3) targets (background, interior, boundary) of an instance map."""
    return np.eye(3, dtype=np.float32)[three_class_map(instances, width)]
