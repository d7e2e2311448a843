"""Segmentation heads: a ``logits`` convolution and a float32 ``probabilities`` activation.

Two heads: ``foreground`` (``classes`` channels, the nucleus probability last) and
``three_class`` (Kumar et al. 2017, IEEE TMI: a softmax over background, nucleus interior and
nucleus boundary, the channel order of :mod:`nuclei_tf.data.targets`).
"""
from keras import layers

HEADS = ("foreground", "three_class")
#: channels of the three_class head: background, interior, boundary
THREE_CLASS_CHANNELS = 3


def head_activation(classes, activation=None):
    """The final activation: ``activation`` if given, else sigmoid for 1 class and softmax otherwise."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1; got {classes}")
    if activation is not None:
        return activation
    return "sigmoid" if classes == 1 else "softmax"


def head_classes(head, classes, activation=None):
    """``(classes, activation)`` of ``head``: as given for ``foreground``, a 3-way softmax for
    ``three_class`` (which accepts ``classes`` left at 1 or set to 3, and no other activation)."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    if head == "foreground":
        return classes, activation
    if classes not in (1, THREE_CLASS_CHANNELS) or activation not in (None, "softmax"):
        raise ValueError(f"the three_class head is a 3-class softmax; leave classes and activation unset "
                         f"(got classes={classes}, activation={activation!r})")
    return THREE_CLASS_CHANNELS, "softmax"


def segmentation_head(x, classes, activation=None, kernel_size=1, suffix="", head="foreground"):
    """Per-pixel class scores ``logits{suffix}`` then ``probabilities{suffix}`` of ``head``.

    The activation layer runs in float32, so outputs are float32 under a mixed_float16 policy.
    """
    classes, activation = head_classes(head, classes, activation)
    logits = layers.Conv2D(classes, kernel_size, padding="same", name=f"logits{suffix}")(x)
    return layers.Activation(
        head_activation(classes, activation), dtype="float32", name=f"probabilities{suffix}"
    )(logits)


def model_head(model):
    """``"three_class"`` for a model whose (last) output has the three_class head's channels, else
    ``"foreground"``: read from the model itself, so a saved ``.keras`` file needs no extra setting."""
    return "three_class" if model.outputs[-1].shape[-1] == THREE_CLASS_CHANNELS else "foreground"
