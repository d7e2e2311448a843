"""GB U-Net (Lagree 2021 Fig. 1): a second-stage U-Net on the image and frozen members' logits."""
import math

import keras
from keras import layers

from nuclei_tf.models.encoder_unet import sm_decoder_block
from nuclei_tf.models.heads import segmentation_head
from nuclei_tf.models.inputs import image_input
from nuclei_tf.models.members import LAGREE_MEMBERS, frozen_member, input_multiple, load_members
from nuclei_tf.models.paths import contracting_path, expanding_path
from nuclei_tf.models.registry import register
from nuclei_tf.models.unet import level_filters


@register("gbunet")
def gbunet(
    members=LAGREE_MEMBERS,
    base_filters=32,
    depth=5,
    dropout=0.2,
    upsampling="upsample",
    classes=2,
    activation=None,
    input_shape=(None, None, 3),
    name="gbunet",
):
    """GB U-Net (Lagree 2021 Fig. 1): frozen member U-Nets' logits + image -> second-stage U-Net.

    ``members`` (default: Lagree's U-Nets with VGG-19, ResNet-101 and DenseNet-121 encoders,
    untrained) are ``keras.Model``s, ``.keras`` paths or ``build_model`` option dicts; each one's
    ``logits`` (pre-activation maps) is concatenated with the image. The second stage has
    ``depth`` levels of two 3x3 conv-BN-ReLU-Dropout units (``base_filters`` doubling) and the
    segmentation_models decoder. Height and width must be multiples of every member's and of
    2^(depth-1).
    """
    models = load_members(members)
    if not models:
        raise ValueError("gbunet needs at least one member")
    filters = level_filters(base_filters, depth)
    inputs, x = image_input(input_shape, math.lcm(input_multiple(models), 2 ** (depth - 1)))
    maps = [frozen_member(model, index, "logits")(x) for index, model in enumerate(models)]
    x = layers.Concatenate(name="stage2_input")([x, *maps])
    features = contracting_path(x, filters, "stage2_down{}", batch_norm=True, dropout=dropout)
    x = expanding_path(features[-1], features[-2::-1], filters[-2::-1], sm_decoder_block(upsampling))
    outputs = segmentation_head(x, classes, activation)
    return keras.Model(inputs, outputs, name=name)
