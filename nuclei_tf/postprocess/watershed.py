"""Marker-controlled watershed on the distance transform, to split touching nuclei.

Markers are the regional maxima of the Euclidean distance transform that stand at
least ``h`` pixels above their surroundings (h-maxima; ``h`` = 0.5 px is close to the
"ultimate eroded points" of ImageJ/Fiji's binary watershed). Each connected component
of the mask is flooded from its own markers on its inverted distance map
(:func:`split_components` and :func:`flood`, shared with the three-class head's
:mod:`~nuclei_tf.postprocess.markers`).
"""
import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from nuclei_tf.data.labels import binary_to_instances

#: background margin (px) around each component's crop; >= the Gaussian's reach (4 sigma at sigma 1)
CROP_MARGIN = 4


def flood(component, markers, distance=None):
    """``component`` (a boolean crop) flooded from its labelled ``markers`` (ids 1..k) on its
    inverted distance transform (``distance``, computed when not given): int32 pieces 1..k.
    A component with at most one marker stays whole."""
    if markers.max() <= 1:
        return component.astype(np.int32)
    if distance is None:
        distance = ndimage.distance_transform_edt(component)
    return watershed(-distance, markers, mask=component).astype(np.int32)


def _split_component(component, h, smoothing):
    """Watershed of one connected component (a boolean crop with a background margin)."""
    distance = ndimage.distance_transform_edt(component)
    if smoothing > 0:
        distance = ndimage.gaussian_filter(distance, smoothing)
    markers = binary_to_instances(h_maxima(distance, h) & component, connectivity=2)
    return flood(component, markers, distance)


def split_components(mask, split, margin=CROP_MARGIN):
    """Split each 4-connected component of ``mask`` with ``split(component, crop)``; returns an
    int32 instance map (ids 1..N).

    ``component`` is the component's boolean crop grown by ``margin`` px, ``crop`` its
    ``(rows, cols)`` slices in ``mask``; ``split`` returns its pieces numbered 1..k, inside the
    component. Besides the crops, memory is one int32 map (whole slides): the component labels
    are overwritten in place by their pieces' ids, negated until every component is done so
    that no id can be mistaken for a component label.
    """
    labels = binary_to_instances(np.asarray(mask, dtype=bool), connectivity=1)
    next_id = 1
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        crop = slice(max(box[0].start - margin, 0), box[0].stop + margin), slice(max(box[1].start - margin, 0), box[1].stop + margin)
        component = labels[crop] == label
        pieces = split(component, crop)[component]
        labels[crop][component] = np.where(pieces > 0, -(pieces + (next_id - 1)), 0)
        next_id += int(pieces.max(initial=0))
    return np.negative(labels, out=labels)


def watershed_split(mask, h=1.0, smoothing=1.0, margin=CROP_MARGIN):
    """Split the foreground of ``mask`` into nuclei; returns an int32 instance map (ids 1..N).

    Each 4-connected component is split on its own crop (:func:`split_components`).
    ``smoothing``: sigma of a Gaussian on the distance map before finding markers (0: none),
    which suppresses markers on ragged borders. A component without a marker stays whole.
    """
    return split_components(mask, lambda component, crop: _split_component(component, h, smoothing), margin)
