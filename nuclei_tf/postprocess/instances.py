"""Probability map -> instance map: threshold, fill holes, drop small objects, label, split."""
from dataclasses import asdict, dataclass

import numpy as np

from nuclei_tf.data.labels import binary_to_instances, relabel_contiguous
from nuclei_tf.postprocess.morphology import fill_holes, remove_small_objects
from nuclei_tf.postprocess.watershed import watershed_split


@dataclass(frozen=True)
class PostProcess:
    """The post-processing settings shipped with a model (and chosen on validation data).

    ``split``: "none" (connected components) or "watershed" (marker-controlled watershed on
    the distance transform, see :func:`~nuclei_tf.postprocess.watershed.watershed_split`).
    """

    threshold: float = 0.5
    min_size: int = 10
    fill: bool = True
    split: str = "none"
    h: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        if self.split not in ("none", "watershed"):
            raise ValueError(f"split must be 'none' or 'watershed', got {self.split!r}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, config):
        return cls(**config)

    def __call__(self, probability):
        return probability_to_instances(probability, self)


def filled_mask_to_instances(mask, settings):
    """Binary mask whose holes are already filled -> int32 instances 1..N (split, size filter).

    Every step works on one 4-connected component at a time, which is what lets
    :mod:`~nuclei_tf.postprocess.strips` process a whole slide strip by strip.
    """
    if settings.split == "watershed":
        instances = watershed_split(mask, h=settings.h)
    else:
        instances = binary_to_instances(mask)
    return relabel_contiguous(remove_small_objects(instances, settings.min_size, copy=False))


def mask_to_instances(mask, settings):
    """Binary mask -> int32 instance map with ids 1..N under ``settings``."""
    return filled_mask_to_instances(fill_holes(mask) if settings.fill else mask, settings)


def probability_to_instances(probability, settings=PostProcess()):
    """Foreground probability (H x W, or H x W x 2 softmax whose channel 1 is nucleus) -> instances."""
    probability = np.asarray(probability)  # float16 maps of whole slides stay float16
    if probability.dtype.kind != "f":
        probability = probability.astype(np.float32)
    if probability.ndim == 3:
        probability = probability[..., -1]
    if probability.ndim != 2:
        raise ValueError(f"expected an H x W probability map, got shape {probability.shape}")
    return mask_to_instances(foreground(probability, settings), settings)


def foreground(probability, settings):
    """``probability > settings.threshold``, refusing maps that hold NaN or Inf."""
    if not np.isfinite(probability).all():
        raise ValueError("probability map holds NaN or Inf")
    return probability > settings.threshold
