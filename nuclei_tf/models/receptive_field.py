"""The receptive field of a segmentation model, measured rather than assumed: how far from an
output pixel an input pixel can still change it. Tiled inference that discards a margin at
least this wide reproduces the untiled model (:mod:`nuclei_tf.inference.predict`)."""
import math

import numpy as np


def input_multiple(model):
    """The number height and width must be multiples of (the model's ``input_size_check``), or 1."""
    try:
        return int(model.get_layer("input_size_check").multiple)
    except ValueError:
        return 1


def receptive_field_radius(model, size=None, seeds=(0, 1)):
    """Largest distance (px, Chebyshev) from the centre output pixel to an input pixel with a
    non-zero gradient of one of its channels (each channel on its own: the channels of a softmax
    sum to a constant), over random ``size`` x ``size`` images (default: the
    smallest multiple of the model's input multiple of at least 256 px), one per seed (a ReLU
    that happens to be off for one input could hide a dependency)."""
    return max(_radius(model, size, seed) for seed in seeds)


def _radius(model, size, seed):
    import tensorflow as tf

    multiple = input_multiple(model)
    size = size or multiple * math.ceil(256 / multiple)
    x = tf.Variable(np.random.default_rng(seed).random((1, size, size, 3), dtype=np.float32))
    centre = size // 2
    with tf.GradientTape(persistent=True) as tape:
        out = tf.cast(model(x, training=False)[0, centre, centre], tf.float32)
        channels = [out[channel] for channel in range(out.shape[-1])]
    gradient = sum(np.abs(tape.gradient(value, x).numpy()[0]).max(axis=-1) for value in channels)
    del tape
    rows, cols = np.nonzero(gradient > 0)
    if not len(rows):
        raise ValueError(f"{model.name}: the output does not depend on the input of this probe (every ReLU off?); "
                         "the receptive field cannot be measured on these weights")
    radius = int(max(np.abs(rows - centre).max(), np.abs(cols - centre).max()))
    if radius >= centre:
        raise ValueError(f"the receptive field reaches the edge of the {size} px probe image; measure with a larger size")
    return radius


def inference_margin(model, size=None):
    """The receptive-field radius rounded up to the model's input multiple: the margin that tiled
    inference discards (tiles then start on that multiple, so pooling grids line up)."""
    multiple = input_multiple(model)
    return multiple * math.ceil(receptive_field_radius(model, size) / multiple)
