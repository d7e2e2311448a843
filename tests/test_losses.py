"""The papers' losses against hand-computed values."""
import math

import numpy as np
import pytest
import tensorflow as tf

from nuclei_tf.train.losses import LOSSES, dice_loss, get_loss, long_loss, three_class_loss, weighted_cross_entropy
from nuclei_tf.train.trainer import hard_dice


def tensors(*arrays):
    return [tf.constant(np.asarray(a, np.float32)) for a in arrays]


def test_cross_entropy_of_a_coin_flip_is_ln2_and_scales_with_weights():
    y, p = tensors(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 0.5))
    assert math.isclose(float(weighted_cross_entropy(y, p)), math.log(2), rel_tol=1e-6)
    (w,) = tensors(np.full((1, 2, 2, 1), 3.0))
    assert math.isclose(float(weighted_cross_entropy(y, p, w)), 3 * math.log(2), rel_tol=1e-6)
    softmax = tf.concat([1 - p, p], axis=-1)
    onehot = tf.concat([1 - y, y], axis=-1)
    assert math.isclose(float(weighted_cross_entropy(onehot, softmax)), math.log(2), rel_tol=1e-6)


def test_dice_loss_with_plus_one_smoothing():
    y = np.zeros((1, 4, 4, 1))
    y[0, :2] = 1  # 8 pixels
    p = np.zeros((1, 4, 4, 1))
    p[0, 1:3] = 1  # 8 pixels, 4 shared
    y, p = tensors(y, p)
    assert math.isclose(float(dice_loss(y, p, smooth=1.0)), 1 - (2 * 4 + 1) / (8 + 8 + 1), rel_tol=1e-6)
    empty = tf.zeros((1, 4, 4, 1))
    assert float(dice_loss(empty, empty, smooth=1.0)) == pytest.approx(0.0, abs=1e-6)


def test_long_loss_is_bce_minus_log_dice():
    y, p = tensors(np.ones((2, 2, 2, 1)), np.full((2, 2, 2, 1), 0.5))
    dice = (2 * 2 + 1) / (4 + 2 + 1)
    assert math.isclose(float(long_loss(y, p)), math.log(2) - math.log(dice), rel_tol=1e-5)


def test_three_class_loss_is_weighted_categorical_ce_plus_interior_and_boundary_dice():
    # pixel a: interior, predicted (0.2, 0.6, 0.2), weight 1; pixel b: boundary, predicted (0.1, 0.3, 0.6), weight 3
    y, p, w = tensors([[[[0, 1, 0], [0, 0, 1]]]], [[[[0.2, 0.6, 0.2], [0.1, 0.3, 0.6]]]], [[[[1.0], [3.0]]]])
    cross_entropy = (1 * -math.log(0.6) + 3 * -math.log(0.6)) / 2
    interior = (2 * 0.6 + 1) / (1 + (0.6 + 0.3) + 1)
    boundary = (2 * 0.6 + 1) / (1 + (0.2 + 0.6) + 1)
    expected = cross_entropy + ((1 - interior) + (1 - boundary)) / 2
    assert math.isclose(float(three_class_loss(y, p, w)), expected, rel_tol=1e-5)
    assert math.isclose(float(get_loss("three_class")(y, p, w)), expected, rel_tol=1e-5)
    with pytest.raises(ValueError, match="needs the three_class head's 3 channels, got 1"):
        three_class_loss(*tensors(np.ones((1, 2, 2, 1)), np.ones((1, 2, 2, 1))))


def test_the_dice_metric_of_a_three_class_model_scores_interior_plus_boundary():
    # nucleus = interior + boundary: targets (a, b) nucleus, (c, d) background; predicted nucleus 0.9, 0.4, 0.6, 0.1
    y, p = tensors([[[[0, 1, 0], [0, 0, 1], [1, 0, 0], [1, 0, 0]]]],
                   [[[[0.1, 0.5, 0.4], [0.6, 0.1, 0.3], [0.4, 0.3, 0.3], [0.9, 0.05, 0.05]]]])
    assert math.isclose(float(hard_dice(y, p)), (2 * 1 + 1) / (2 + 2 + 1), rel_tol=1e-6)  # a, c predicted


def float16_inputs(name):
    """Random targets and probabilities: 3 channels for the three_class loss, 4 for hover (h, v and a
    2-way softmax), 1 for the others."""
    if name == "hover":
        maps = tf.random.uniform((2, 8, 8, 2), -1, 1)
        y = tf.concat([maps, tf.one_hot(tf.random.uniform((2, 8, 8), maxval=2, dtype=tf.int32), 2)], axis=-1)
        p = tf.concat([maps * 0.5, tf.nn.softmax(tf.random.normal((2, 8, 8, 2)))], axis=-1)
    elif name == "stardist":
        distances = tf.random.uniform((2, 8, 8, 32), 0, 20)
        y = tf.concat([distances, tf.random.uniform((2, 8, 8, 1))], axis=-1)
        p = tf.concat([distances + 1.0, tf.random.uniform((2, 8, 8, 1))], axis=-1)
    elif name == "three_class":
        y, p = tf.one_hot(tf.random.uniform((2, 8, 8), maxval=3, dtype=tf.int32), 3), tf.nn.softmax(tf.random.normal((2, 8, 8, 3)))
    else:
        y, p = tf.random.uniform((2, 8, 8, 1)) > 0.5, tf.random.uniform((2, 8, 8, 1))
    return tf.cast(y, tf.float16), tf.cast(p, tf.float16)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_are_float32_under_float16_inputs(name):
    y, p = float16_inputs(name)
    value = get_loss(name)(y, p, tf.ones((2, 8, 8, 1), tf.float16))
    assert value.dtype == tf.float32 and np.isfinite(float(value))


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        get_loss("focal")
