"""Probability map -> instance map: threshold, fill holes, drop small objects, label, split."""
from dataclasses import asdict, dataclass

import numpy as np

from nuclei_tf.data.labels import binary_to_instances, relabel_contiguous
from nuclei_tf.postprocess.markers import REDUCED, marker_split, nucleus_outputs
from nuclei_tf.postprocess.morphology import fill_holes, remove_small_objects
from nuclei_tf.postprocess.watershed import CROP_MARGIN, watershed_split

SPLITS = ("none", "watershed", "markers", "polygons")


@dataclass(frozen=True)
class PostProcess:
    """The post-processing settings shipped with a model (and chosen on validation data).

    ``split``: "none" (connected components), "watershed" (marker-controlled watershed on the
    distance transform, see :func:`~nuclei_tf.postprocess.watershed.watershed_split`) or, for
    three-class and hv models, "markers" (markers where the interior probability, or the hv
    head's interior-ness, exceeds ``marker_threshold``, see :mod:`~nuclei_tf.postprocess.markers`
    and :mod:`~nuclei_tf.postprocess.hover`; ``require_marker`` drops a nucleus component that
    holds none; a marker of fewer than ``min_marker_size`` pixels is no marker; ``marker_opening``
    > 0 fills the markers' holes and opens them by a disk of that radius first, HoVer-Net's
    clean-up), or, for rays models, "polygons" (StarDist's polygons of the pixels whose object
    probability exceeds ``threshold``, suppressed beyond an overlap of ``nms_threshold``, see
    :mod:`~nuclei_tf.postprocess.star_polygons`).
    """

    threshold: float = 0.5
    min_size: int = 10
    fill: bool = True
    split: str = "none"
    h: float = 1.0
    marker_threshold: float = 0.5
    require_marker: bool = False
    min_marker_size: int = 1
    marker_opening: int = 0
    nms_threshold: float = 0.4

    def __post_init__(self):
        for name in ("threshold", "marker_threshold", "nms_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.require_marker and self.split != "markers":
            raise ValueError(f"require_marker needs split 'markers', got split {self.split!r}")
        if self.min_marker_size > 1 and self.split != "markers":
            raise ValueError(f"min_marker_size needs split 'markers', got split {self.split!r}")
        if self.marker_opening and self.split != "markers":
            raise ValueError(f"marker_opening needs split 'markers', got split {self.split!r}")
        if not 0 <= self.marker_opening <= CROP_MARGIN:
            raise ValueError(f"marker_opening must lie in 0..{CROP_MARGIN} px, got {self.marker_opening}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, config):
        return cls(**config)

    def __call__(self, probability):
        return probability_to_instances(probability, self)


def filled_mask_to_instances(mask, settings, markers=None):
    """Binary mask whose holes are already filled -> int32 instances 1..N (split, size filter);
    ``markers``: the boolean marker map of split "markers" (:func:`markers_of`).

    Every step works on one 4-connected component at a time, which is what lets
    :mod:`~nuclei_tf.postprocess.strips` process a whole slide strip by strip.
    """
    if settings.split == "watershed":
        instances = watershed_split(mask, h=settings.h)
    elif settings.split == "markers":
        instances = marker_split(mask, markers, require_marker=settings.require_marker,
                                 min_marker_size=settings.min_marker_size, marker_opening=settings.marker_opening)
    else:
        instances = binary_to_instances(mask)
    return relabel_contiguous(remove_small_objects(instances, settings.min_size, copy=False), copy=False)


def mask_to_instances(mask, settings):
    """Mask of :func:`binarise` -> int32 instance map with ids 1..N under ``settings``."""
    filled = fill_holes(mask) if settings.fill else mask
    return filled_mask_to_instances(filled, settings, markers_of(mask, settings))


def markers_of(mask, settings):
    """The boolean markers of a :func:`binarise` mask for split "markers"; None otherwise."""
    return np.asarray(mask) > 1 if settings.split == "markers" else None


def probability_to_instances(probability, settings=PostProcess()):
    """Nucleus probability -> instances. Accepted maps: H x W; H x W x 2 softmax whose channel 1
    is nucleus, or a three-class or hv model's reduced (interior, nucleus) map (split "markers"
    reads both); H x W x 3 three-class softmax and H x W x 4 hv outputs (reduced first); H x W x 33
    rays outputs (split "polygons")."""
    if settings.split == "polygons":
        from nuclei_tf.postprocess.star_polygons import polygon_instances

        return polygon_instances(probability, settings)
    return mask_to_instances(binarise(probability, settings), settings)


def binarise(probability, settings):
    """What post-processing keeps of a probability map: ``nucleus > threshold`` (bool) or, for
    split "markers", uint8 codes 0 background, 1 nucleus, 2 marker (a nucleus pixel whose
    interior probability exceeds ``marker_threshold``): one byte per pixel either way. Maps
    holding NaN or Inf are refused."""
    probability = np.asarray(probability)  # float16 maps of whole slides stay float16
    if probability.dtype.kind != "f":
        probability = probability.astype(np.float32)
    if settings.split == "polygons":
        raise ValueError("split 'polygons' (a rays model) has no one-byte mask: its nuclei are polygons")
    if probability.ndim == 3 and probability.shape[-1] in (3, 4):
        probability = nucleus_outputs(probability)
    if not np.isfinite(probability).all():
        raise ValueError("probability map holds NaN or Inf")
    if settings.split == "markers":
        if probability.ndim != 3 or probability.shape[-1] != len(REDUCED):
            raise ValueError(f"split 'markers' needs a three-class or hv model's outputs (H x W x 3 or 4, or "
                             f"reduced, x 2: {', '.join(REDUCED)}), got shape {probability.shape}")
        nucleus = probability[..., 1] > settings.threshold
        return nucleus.astype(np.uint8) + (nucleus & (probability[..., 0] > settings.marker_threshold))
    if probability.ndim == 3:
        probability = probability[..., -1]
    if probability.ndim != 2:
        raise ValueError(f"expected an H x W probability map, got shape {probability.shape}")
    return probability > settings.threshold
