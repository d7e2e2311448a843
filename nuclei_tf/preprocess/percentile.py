"""StarDist's input normalisation (Schmidt et al. 2018; ``csbdeep.utils.normalize``, the StarDist
H&E notebooks' ``normalize(img, 1, 99.8, axis=(0, 1, 2))``): each image scaled by its own 1st
and 99.8th percentiles over all channels together, ``(x - p1) / (p99.8 - p1)``, without
clipping, so that the model sees no absolute stain intensity.

The percentiles are the image's own (a whole slide's: its statistics sample, the thumbnail), so
every tile of one image is scaled alike. An image of one grey level (p99.8 - p1 < 1) is scaled
by 1 grey level rather than divided by zero.
"""
import numpy as np

#: the percentiles of StarDist's H&E examples
LOW, HIGH = 1.0, 99.8


class PercentileNormalizer:
    """Scale images by percentiles of a sample of them: :meth:`source_statistics` then :meth:`apply`
    (the interface of :class:`~nuclei_tf.preprocess.macenko.MacenkoNormalizer`)."""

    def __init__(self, low=LOW, high=HIGH):
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
        self.low, self.high = low, high

    def source_statistics(self, sample):
        """``(p_low, p_high)`` over every pixel and channel of ``sample``."""
        sample = np.asarray(sample)
        if not sample.size:
            raise ValueError("no pixels to take percentiles of")
        low, high = np.percentile(sample, (self.low, self.high))
        return float(low), float(high)

    def apply(self, image, statistics):
        """Float32 ``(image - p_low) / max(p_high - p_low, 1)``."""
        low, high = statistics
        return ((np.asarray(image, np.float32) - np.float32(low)) / np.float32(max(high - low, 1.0))).astype(np.float32)

    def transform(self, image):
        """``image`` scaled by its own percentiles."""
        return self.apply(image, self.source_statistics(image))
