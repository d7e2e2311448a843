"""Post-processing of the hv head (HoVer-Net, Graham et al. 2019, Med. Image Anal., section 3.4):
markers where the distance maps vary smoothly, i.e. away from the edges between nuclei.

HoVer-Net takes the Sobel derivatives of the maps (21 x 21: h along x, v along y), scales each to
[0, 1] by the image's own extremes, and calls ``E = max(1 - S_h, 1 - S_v)`` the energy: near 1 on
the edges between nuclei, where a map jumps from +1 to -1, low inside a nucleus, where it rises
steadily. Markers are the nucleus pixels of low energy, then (fill holes, an opening, small ones
dropped) a marker-controlled watershed.

Here each derivative is scaled by its kernel's own extremes instead (the response to a step from
-1 to +1), so that a pixel's energy depends on its 21 x 21 neighbourhood only, not on the rest of
the image: tiles, strips and whole slides then agree. The model's 4 channels are reduced per
tile to the two channels of the three-class head's post-processing (:func:`reduce_hv`):
``1 - E`` (interior-ness, whose threshold is the ``marker_threshold``) and the nucleus
probability. ``1 - E`` does not change under flips and 90-degree rotations (a flip negates a map
and its axis together; a turn swaps the two maps), so test-time augmentation averages it as it
is. Markers (:mod:`~nuclei_tf.postprocess.markers`, ``marker_opening``) then flood each nucleus
on its distance transform, as for the three-class head (the one-byte masks of slide strips hold
no energy).
"""
import cv2
import numpy as np

from nuclei_tf.data.hv_targets import HV_MAPS

#: HoVer-Net's Sobel kernel size for the energy
ENERGY_KERNEL = 21


def derivative_kernels(size):
    """The x and y derivative kernels (size x size, float64): binomial smoothing across, the
    binomial difference along (the kernels of ``cv2.Sobel``), scaled so that a ramp of slope 1 per
    pixel gives 1."""
    smooth, difference = np.array([1.0]), np.array([-1.0, 0.0, 1.0])
    for _ in range(size - 1):
        smooth = np.convolve(smooth, [1.0, 1.0])
    for _ in range(size - 3):
        difference = np.convolve(difference, [1.0, 1.0])
    difference /= np.sum(difference * (np.arange(size) - size // 2))
    along_x = np.outer(smooth / smooth.sum(), difference)
    return along_x, along_x.T


def interiorness(maps, size=ENERGY_KERNEL):
    """``1 - E`` (H, W) of (H, W, 2) h, v maps: each map's derivative along its own axis over its
    largest possible magnitude (maps in [-1, 1]), the smaller of the two, mapped from [-1, 1] to [0, 1]."""
    maps = np.asarray(maps, np.float32)
    slopes = []
    for channel, kernel in enumerate(derivative_kernels(size)):
        kernel = kernel.astype(np.float32)
        slope = cv2.filter2D(np.ascontiguousarray(maps[..., channel]), cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
        slopes.append(slope / np.float32(np.abs(kernel).sum()))
    return np.clip((1.0 + np.minimum(*slopes)) / 2.0, 0.0, 1.0)


def reduce_hv(outputs, size=ENERGY_KERNEL):
    """(N, H, W, 4) or (H, W, 4) hv-head outputs -> float32 (..., 2): interior-ness (:func:`interiorness`)
    and nucleus probability, the channels of :func:`~nuclei_tf.postprocess.markers.reduce_three_class`."""
    outputs = np.asarray(outputs, dtype=np.float32)
    batch = outputs if outputs.ndim == 4 else outputs[None]
    reduced = np.stack([np.stack([interiorness(tile[..., HV_MAPS], size), tile[..., -1]], axis=-1) for tile in batch])
    return reduced if outputs.ndim == 4 else reduced[0]
