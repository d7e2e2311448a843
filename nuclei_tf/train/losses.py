"""The papers' segmentation losses, always computed in float32.

Every loss takes ``(y_true, y_pred, weights=None)``: targets and probabilities of shape
(B, H, W, C) with C = 1 (sigmoid), 2 (softmax; channel 1 = nucleus) or 3 (the three_class
head: background, interior, boundary), and an optional (B, H, W, 1) weight map. It returns a
scalar.

* ``lagree2021``: weighted cross-entropy with the U-Net weight maps + (1 - soft Dice)
  (Lagree et al. 2021, eq. 1-3).
* ``kasturi2022``: BCE + Dice loss with +1 smoothing, 1 - (2|y.p| + 1) / (|y| + |p| + 1)
  (Kasturi et al. 2022, eq. 1-3).
* ``ledinh2021``: Dice loss, 1 - 2|y.p| / (|y| + |p|) (Le Dinh et al. 2021, eq. 3).
* ``long2020``: lambda * BCE + mean over images of -log Dice (Long 2020, eq. 1-2, lambda = 1).
* ``three_class``: Lagree's loss generalised to the three-class softmax (Kumar et al. 2017):
  weighted categorical cross-entropy + mean over the interior and boundary classes of
  (1 - soft Dice).
* ``hover``: HoVer-Net's loss for the hv head (Graham et al. 2019, eq. 1-4, lambda_b = 2, the
  others 1): on the NP branch categorical cross-entropy + (1 - soft Dice) of the nucleus
  channel; on the distance maps the mean squared error + twice the mean squared error of their
  gradients (h along x, v along y, 5 x 5 Sobel) over the nucleus pixels.
* ``stardist``: StarDist's loss for the rays head (Schmidt et al. 2018, section 2; the weights of
  its public configuration): BCE of the object probability + 0.2 x the mean absolute error of
  the ray distances weighted by the true object probability + 1e-4 x the mean absolute distance
  predicted on background.

Written with ``keras.ops``, so the same losses train under the TensorFlow backend (our
``Trainer``) and under JAX or PyTorch (``keras.Model.fit``).
"""
from keras import ops

from nuclei_tf.data.targets import BOUNDARY, INTERIOR
from nuclei_tf.data.hv_targets import HV_CHANNELS, HV_MAPS, HV_NUCLEUS
from nuclei_tf.data.star_targets import RAY_CHANNELS, RAY_DISTANCES
from nuclei_tf.postprocess.hover import derivative_kernels

EPSILON = 1e-7


def _float32(*tensors):
    return [None if t is None else ops.cast(t, "float32") for t in tensors]


def cross_entropy_map(y_true, y_pred):
    """Per-pixel cross-entropy (B, H, W): binary for 1 channel, categorical for 2 or 3."""
    y_true, y_pred = _float32(y_true, y_pred)
    y_pred = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
    if y_pred.shape[-1] == 1:
        ce = -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))
        return ce[..., 0]
    return -ops.sum(y_true * ops.log(y_pred), axis=-1)


def weighted_cross_entropy(y_true, y_pred, weights=None):
    """Mean over pixels of w(x) * CE(x) (Lagree eq. 2; plain (B)CE without weights)."""
    ce = cross_entropy_map(y_true, y_pred)
    if weights is not None:
        ce = ce * ops.cast(weights, "float32")[..., 0]
    return ops.mean(ce)


def _flat_channel(y_true, y_pred, channel):
    """Channel ``channel`` of targets and probabilities, flattened per image: (B, H*W)."""
    y_true, y_pred = _float32(y_true, y_pred)
    batch = ops.shape(y_pred)[0]
    return ops.reshape(y_true[..., channel], (batch, -1)), ops.reshape(y_pred[..., channel], (batch, -1))


def nucleus_channel(y):
    """The nucleus probability (B, H, W, 1): the last channel (foreground and hv heads), or interior +
    boundary for the three_class head."""
    return y[..., INTERIOR : INTERIOR + 1] + y[..., BOUNDARY : BOUNDARY + 1] if y.shape[-1] == 3 else y[..., -1:]


def dice_per_image(y_true, y_pred, smooth=0.0, channel=-1):
    """Soft Dice of one channel (default: the nucleus one) per image:
    (2 sum(y p) + s) / (sum(y) + sum(p) + s), shape (B,)."""
    y, p = _flat_channel(y_true, y_pred, channel)
    intersection = ops.sum(y * p, axis=1)
    total = ops.sum(y, axis=1) + ops.sum(p, axis=1)
    return (2.0 * intersection + smooth) / (total + smooth + EPSILON)


def dice_loss(y_true, y_pred, weights=None, smooth=1.0, channel=-1):
    """1 - mean soft Dice of ``channel`` (Le Dinh eq. 3; with smooth=1, Kasturi eq. 3)."""
    return 1.0 - ops.mean(dice_per_image(y_true, y_pred, smooth, channel))


def lagree_loss(y_true, y_pred, weights=None):
    """Weighted cross-entropy + (1 - soft Dice) (Lagree et al. 2021, eq. 1)."""
    return weighted_cross_entropy(y_true, y_pred, weights) + dice_loss(y_true, y_pred, smooth=1.0)


def kasturi_loss(y_true, y_pred, weights=None):
    """BCE + Dice loss with +1 smoothing (Kasturi et al. 2022, eq. 1-3)."""
    return weighted_cross_entropy(y_true, y_pred) + dice_loss(y_true, y_pred, smooth=1.0)


def ledinh_loss(y_true, y_pred, weights=None):
    """Dice loss (Le Dinh et al. 2021, eq. 3); +1 smoothing keeps empty tiles defined."""
    return dice_loss(y_true, y_pred, smooth=1.0)


def long_loss(y_true, y_pred, weights=None, bce_weight=1.0):
    """lambda * BCE + mean over images of -log Dice (Long 2020, eq. 1), lambda = 1."""
    dice = dice_per_image(y_true, y_pred, smooth=1.0)
    return bce_weight * weighted_cross_entropy(y_true, y_pred) - ops.mean(ops.log(dice + EPSILON))


def three_class_loss(y_true, y_pred, weights=None):
    """Lagree eq. 1 on the three-class softmax: weighted categorical cross-entropy + the mean of
    (1 - soft Dice) over the interior and boundary channels (+1 smoothing)."""
    if y_pred.shape[-1] != 3:
        raise ValueError(f"loss three_class needs the three_class head's 3 channels, got {y_pred.shape[-1]}")
    dice = [dice_loss(y_true, y_pred, smooth=1.0, channel=c) for c in (INTERIOR, BOUNDARY)]
    return weighted_cross_entropy(y_true, y_pred, weights) + (dice[0] + dice[1]) / 2.0


#: HoVer-Net's Sobel kernel size in the gradient loss
GRADIENT_KERNEL = 5


def _gradient(maps, kernel):
    return ops.conv(maps, ops.convert_to_tensor(kernel.astype("float32")[:, :, None, None]), padding="same")


def hover_loss(y_true, y_pred, weights=None):
    """HoVer-Net's loss (Graham et al. 2019, eq. 1-4): CE + Dice on the NP softmax, MSE + 2 MSGE
    on the h, v maps (MSGE: over the true nucleus pixels)."""
    if y_pred.shape[-1] != HV_CHANNELS:
        raise ValueError(f"loss hover needs the hv head's {HV_CHANNELS} channels, got {y_pred.shape[-1]}")
    y_true, y_pred = _float32(y_true, y_pred)
    nucleus = weighted_cross_entropy(y_true[..., HV_NUCLEUS], y_pred[..., HV_NUCLEUS]) + dice_loss(y_true, y_pred, smooth=1.0)
    maps_true, maps_pred = y_true[..., HV_MAPS], y_pred[..., HV_MAPS]
    mse = ops.mean(ops.square(maps_pred - maps_true))
    focus = y_true[..., -1:]
    squared = 0.0
    for channel, kernel in enumerate(derivative_kernels(GRADIENT_KERNEL)):
        error = _gradient(maps_pred[..., channel : channel + 1], kernel) - _gradient(maps_true[..., channel : channel + 1], kernel)
        squared = squared + ops.sum(focus * ops.square(error))
    msge = squared / (2.0 * ops.sum(focus) + EPSILON)
    return nucleus + mse + 2.0 * msge


#: StarDist's weights of the distance term and of the background regulariser
STAR_DISTANCE_WEIGHT, STAR_BACKGROUND_WEIGHT = 0.2, 1e-4


def stardist_loss(y_true, y_pred, weights=None):
    """BCE(object probability) + 0.2 * sum(p_true * mean_k |d - d_true|) / sum(p_true)
    + 1e-4 * mean over background pixels of mean_k |d| (Schmidt et al. 2018)."""
    if y_pred.shape[-1] != RAY_CHANNELS:
        raise ValueError(f"loss stardist needs the rays head's {RAY_CHANNELS} channels, got {y_pred.shape[-1]}")
    y_true, y_pred = _float32(y_true, y_pred)
    probability = y_true[..., -1]
    error = ops.mean(ops.abs(y_pred[..., RAY_DISTANCES] - y_true[..., RAY_DISTANCES]), axis=-1)
    distance = ops.sum(probability * error) / (ops.sum(probability) + EPSILON)
    background = ops.cast(probability <= 0.0, "float32")
    spill = ops.sum(background * ops.mean(ops.abs(y_pred[..., RAY_DISTANCES]), axis=-1)) / (ops.sum(background) + EPSILON)
    return (weighted_cross_entropy(y_true[..., -1:], y_pred[..., -1:]) + STAR_DISTANCE_WEIGHT * distance
            + STAR_BACKGROUND_WEIGHT * spill)


LOSSES = {
    "lagree2021": lagree_loss,
    "kasturi2022": kasturi_loss,
    "ledinh2021": ledinh_loss,
    "long2020": long_loss,
    "three_class": three_class_loss,
    "hover": hover_loss,
    "stardist": stardist_loss,
}
#: the loss each head with fixed channels trains with, and only it
HEAD_LOSSES = {"three_class": "three_class", "hv": "hover", "rays": "stardist"}


def get_loss(name):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
