"""Segmentation heads: a ``logits`` convolution and a float32 ``probabilities`` activation."""
from keras import layers


def head_activation(classes, activation=None):
    """The final activation: ``activation`` if given, else sigmoid for 1 class and softmax otherwise."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1; got {classes}")
    if activation is not None:
        return activation
    return "sigmoid" if classes == 1 else "softmax"


def segmentation_head(x, classes, activation=None, kernel_size=1, suffix=""):
    """Per-pixel class scores ``logits{suffix}`` then ``probabilities{suffix}``.

    The activation layer runs in float32, so outputs are float32 under a mixed_float16 policy.
    """
    logits = layers.Conv2D(classes, kernel_size, padding="same", name=f"logits{suffix}")(x)
    return layers.Activation(
        head_activation(classes, activation), dtype="float32", name=f"probabilities{suffix}"
    )(logits)
