"""Segmentation heads: the last layer ``probabilities`` (float32) of every single-network model.

Four heads:

* ``foreground``: ``classes`` channels (sigmoid or softmax), the nucleus probability last;
* ``three_class`` (Kumar et al. 2017, IEEE TMI): a softmax over background, nucleus interior and
  nucleus boundary, the channel order of :mod:`nuclei_tf.data.targets`;
* ``hv`` (HoVer-Net, Graham et al. 2019, Med. Image Anal., section 3.2): the horizontal and
  vertical distance maps of each nucleus pixel to its nucleus's centre of mass (a linear branch)
  and the nucleus-pixel (NP) branch's 2-way softmax (background, nucleus): 4 channels
  ``h, v, background, nucleus``, so the nucleus probability is last as for the other heads. Here
  both branches share the architecture's decoder (HoVer-Net has one decoder per branch).
* ``rays`` (StarDist, Schmidt et al. 2018, MICCAI, section 2): the distances along 32 rays to the
  edge of the pixel's nucleus (linear) and its object probability (sigmoid): 33 channels, the
  probability last (:mod:`nuclei_tf.data.star_targets`).

A saved model's head is read from its output channels (:func:`model_head`): 3 is three_class,
4 is hv, 33 is rays, anything else foreground.
"""
from keras import layers

from nuclei_tf.data.hv_targets import HV_CHANNELS
from nuclei_tf.data.star_targets import RAY_CHANNELS
from nuclei_tf.data.targets import THREE_CLASS_CHANNELS

HEADS = ("foreground", "three_class", "hv", "rays")
#: output channels of the heads that fix them
HEAD_CHANNELS = {"three_class": THREE_CLASS_CHANNELS, "hv": HV_CHANNELS, "rays": RAY_CHANNELS}
#: heads whose post-processing grows nuclei from markers (split "markers")
MARKER_HEADS = ("three_class", "hv")


def head_activation(classes, activation=None):
    """The final activation: ``activation`` if given, else sigmoid for 1 class and softmax otherwise."""
    if classes < 1:
        raise ValueError(f"classes must be >= 1; got {classes}")
    if activation is not None:
        return activation
    return "sigmoid" if classes == 1 else "softmax"


def head_classes(head, classes, activation=None):
    """``(classes, activation)`` of ``head``: as given for ``foreground``; the other heads fix their
    channels (:data:`HEAD_CHANNELS`) and activations (reported as softmax), so they accept
    ``classes`` left at 1 or set to their channels, and no other activation."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    if head == "foreground":
        return classes, activation
    channels = HEAD_CHANNELS[head]
    if classes not in (1, channels) or activation not in (None, "softmax"):
        raise ValueError(f"the {head} head has {channels} fixed channels; leave classes and activation unset "
                         f"(got classes={classes}, activation={activation!r})")
    return channels, "softmax"


def segmentation_head(x, classes, activation=None, kernel_size=1, suffix="", head="foreground"):
    """Per-pixel outputs ``probabilities{suffix}`` of ``head`` from the decoder features ``x``.

    The output layer runs in float32, so outputs are float32 under a mixed_float16 policy.
    """
    classes, activation = head_classes(head, classes, activation)
    if head == "hv":
        maps = layers.Conv2D(2, kernel_size, padding="same", name=f"hv_maps{suffix}")(x)
        logits = layers.Conv2D(2, kernel_size, padding="same", name=f"logits{suffix}")(x)
        nucleus = layers.Activation("softmax", dtype="float32", name=f"np_probabilities{suffix}")(logits)
        maps = layers.Activation("linear", dtype="float32", name=f"hv_maps_float32{suffix}")(maps)
        return layers.Concatenate(dtype="float32", name=f"probabilities{suffix}")([maps, nucleus])
    if head == "rays":
        distances = layers.Conv2D(classes - 1, kernel_size, padding="same", name=f"star_distances{suffix}")(x)
        logit = layers.Conv2D(1, kernel_size, padding="same", name=f"logits{suffix}")(x)
        probability = layers.Activation("sigmoid", dtype="float32", name=f"object_probability{suffix}")(logit)
        distances = layers.Activation("linear", dtype="float32", name=f"star_distances_float32{suffix}")(distances)
        return layers.Concatenate(dtype="float32", name=f"probabilities{suffix}")([distances, probability])
    logits = layers.Conv2D(classes, kernel_size, padding="same", name=f"logits{suffix}")(x)
    return layers.Activation(
        head_activation(classes, activation), dtype="float32", name=f"probabilities{suffix}"
    )(logits)


def model_head(model):
    """The head of ``model`` (its last output) from its channels (:data:`HEAD_CHANNELS`), so a saved
    ``.keras`` file needs no extra setting."""
    channels = model.outputs[-1].shape[-1]
    return next((head for head, count in HEAD_CHANNELS.items() if count == channels), "foreground")
