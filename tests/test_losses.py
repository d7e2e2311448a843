"""The papers' losses against hand-computed values."""
import math

import numpy as np
import pytest
import tensorflow as tf

from nuclei_tf.train.losses import LOSSES, dice_loss, get_loss, long_loss, weighted_cross_entropy


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


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_are_float32_under_float16_inputs(name):
    y = tf.cast(tf.random.uniform((2, 8, 8, 1)) > 0.5, tf.float16)
    p = tf.cast(tf.random.uniform((2, 8, 8, 1)), tf.float16)
    value = get_loss(name)(y, p, tf.ones((2, 8, 8, 1), tf.float16))
    assert value.dtype == tf.float32 and np.isfinite(float(value))


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        get_loss("focal")
