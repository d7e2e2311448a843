"""A validation split that sees stain shift (issue 31): of a protocol's training images, hold out
the ones whose H&E stain lies farthest from the others', so that choosing a model or a
post-processing on validation rewards what carries to differently stained test images.

Each image is described by its Macenko stains (the unit optical-density vectors of haematoxylin
and eosin, 6 numbers) and the logarithm of its two 99th-percentile stain concentrations (how
strongly it is stained), every feature standardised over the images. The held-out images are
chosen greedily: the image farthest (Euclidean) from the mean of the images still in training is
moved to validation, ``count`` times. The choice depends on the images only, not on a seed.
"""
import numpy as np

from nuclei_tf.preprocess.macenko import MacenkoNormalizer


def stain_features(image):
    """The 8 stain numbers of an RGB image: its H and E unit vectors, then log 99th-percentile concentrations."""
    stains, maxima = MacenkoNormalizer().source_statistics(image)
    return np.concatenate([np.asarray(stains, np.float64).ravel(), np.log(np.maximum(maxima, 1e-6))])


def farthest_stained(features, count):
    """Indices (in the order chosen) of the ``count`` rows of ``features`` held out greedily, each
    the farthest from the mean of the rows still kept (features standardised first)."""
    features = np.asarray(features, np.float64)
    if not 0 < count < len(features):
        raise ValueError(f"cannot hold out {count} of {len(features)} images")
    spread = features.std(axis=0)
    scaled = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    kept, held = list(range(len(features))), []
    for _ in range(count):
        centre = scaled[kept].mean(axis=0)
        farthest = max(kept, key=lambda i: (np.linalg.norm(scaled[i] - centre), -i))
        kept.remove(farthest)
        held.append(farthest)
    return held


def stain_shift_split(records, count):
    """``{"train": ..., "val": ...}`` of ``records`` with the ``count`` farthest-stained as validation."""
    records = sorted(records, key=lambda r: r.id)
    held = set(farthest_stained([stain_features(r.load_image()) for r in records], count))
    return {"train": [r for i, r in enumerate(records) if i not in held],
            "val": [r for i, r in enumerate(records) if i in held]}
