"""Post-processing of the three-class head (Kumar et al. 2017: background, nucleus interior,
nucleus boundary), marker-controlled like the DSB-2018 winners' boundary-aware models.

The model's softmax is reduced at once to what post-processing needs, two channels
(:func:`reduce_three_class`): interior probability and nucleus probability (interior +
boundary), the nucleus last as for the foreground head. Then nuclei = ``p_nucleus >
threshold`` (holes filled); markers = 8-connected components of ``p_interior >
marker_threshold`` within them; each 4-connected nucleus component is flooded from its own
markers on its inverted distance transform (:func:`marker_split`), so the landscape needs
only the boolean masks. A component without a marker stays whole, or with ``require_marker``
is dropped: the seeded watershed of the DSB-2018 winners grows nuclei from seeds only, so
a region where the model sees no interior is not taken for a nucleus. A marker smaller than
``min_marker_size`` px counts as none, so that a faint interior speck neither seeds a split
nor vouches for a nucleus.
"""
import numpy as np
from scipy import ndimage

from nuclei_tf.data.labels import binary_to_instances, relabel_contiguous
from nuclei_tf.data.targets import BOUNDARY, INTERIOR, THREE_CLASS_CHANNELS, disk
from nuclei_tf.data.hv_targets import HV_CHANNELS
from nuclei_tf.data.star_targets import RAY_CHANNELS
from nuclei_tf.postprocess.hover import reduce_hv
from nuclei_tf.postprocess.morphology import fill_holes, remove_small_objects
from nuclei_tf.postprocess.watershed import CROP_MARGIN, flood, split_components

#: the two channels post-processing keeps of a three-class softmax, in this order
REDUCED = ("interior", "nucleus")


def reduce_three_class(probabilities):
    """(..., 3) three-class softmax -> float32 (..., 2): p_interior, p_interior + p_boundary."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    interior = probabilities[..., INTERIOR]
    return np.stack([interior, interior + probabilities[..., BOUNDARY]], axis=-1)


def nucleus_outputs(outputs):
    """What post-processing needs of model outputs (..., C): the nucleus probability (last
    channel, shape ...) of a foreground head, the two :data:`REDUCED` channels of a three-class or
    hv one (:func:`~nuclei_tf.postprocess.hover.reduce_hv`: computed per tile, the energy needing
    a 21 px neighbourhood); a rays model's outputs whole, its polygons needing every ray."""
    channels = outputs.shape[-1]
    if channels == RAY_CHANNELS:
        return outputs
    if channels == THREE_CLASS_CHANNELS:
        return reduce_three_class(outputs)
    if channels == HV_CHANNELS:
        return reduce_hv(outputs)
    return outputs[..., -1]


def marker_split(mask, markers, margin=CROP_MARGIN, require_marker=False, min_marker_size=1, marker_opening=0):
    """Int32 instances (ids 1..N) of the nucleus ``mask``: every 4-connected component flooded
    from the 8-connected components of ``markers`` inside it of at least ``min_marker_size``
    pixels (:func:`split_components`); ``require_marker``: a component holding no such marker is
    dropped rather than kept whole. ``marker_opening`` > 0: HoVer-Net's clean-up of a component's
    markers first (section 3.4): holes filled, then a morphological opening by a disk of that
    radius (px), which cuts the thin bridges between two nuclei's markers (radius <= ``margin``)."""
    if marker_opening > margin:
        raise ValueError(f"marker_opening {marker_opening} px exceeds the crop margin {margin} px")
    footprint = disk(marker_opening) if marker_opening > 0 else None

    def split(component, crop):
        inside = markers[crop] & component
        if footprint is not None:
            inside = ndimage.binary_opening(fill_holes(inside), structure=footprint)
        seeds = binary_to_instances(inside, connectivity=2)
        if min_marker_size > 1:
            seeds = relabel_contiguous(remove_small_objects(seeds, min_marker_size, copy=False), copy=False)
        if require_marker and not seeds.any():
            return np.zeros(component.shape, np.int32)
        return flood(component, seeds)

    return split_components(mask, split, margin)
