"""Input checks shared by every metric that reads a pair of label maps."""

import numpy as np


def check_label_maps(gt, pred, name=None):
    """Return ``gt`` and ``pred`` as arrays after checking they are comparable instance maps.

    An instance map is a non-empty 2-D array of non-negative integers (0 = background).
    Raises ``ValueError`` naming the image (``name``) when the maps have different shapes,
    are not 2-D, are empty, are not of an integer dtype (floats and booleans are refused)
    or hold negative labels.
    """
    prefix = f"{name}: " if name is not None else ""
    gt, pred = np.asarray(gt), np.asarray(pred)
    for role, labels in (("ground truth", gt), ("prediction", pred)):
        if labels.ndim != 2:
            raise ValueError(f"{prefix}{role} must be a 2-D label map, got shape {labels.shape}")
        if labels.size == 0:
            raise ValueError(f"{prefix}{role} is empty (shape {labels.shape})")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{prefix}{role} must hold integer labels, got dtype {labels.dtype}")
        if labels.min() < 0:
            raise ValueError(f"{prefix}{role} holds negative labels (min {labels.min()})")
    if pred.shape != gt.shape:
        raise ValueError(f"{prefix}prediction shape {pred.shape} != ground truth shape {gt.shape}")
    return gt, pred
