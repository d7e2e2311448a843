"""U-Net on a pretrainable encoder (Lagree 2021, Kasturi 2022), laid out as segmentation_models' Unet.

``encoder_model`` is shared with the UNet++ decoder of ``encoder_unetpp``.
"""
import functools

import keras

from nuclei_tf.models.blocks import check_upsampling, decoder_block
from nuclei_tf.models.encoders import ENCODER_STRIDE, encode
from nuclei_tf.models.heads import segmentation_head
from nuclei_tf.models.inputs import image_input
from nuclei_tf.models.paths import expanding_path
from nuclei_tf.models.registry import register

DECODER_FILTERS = (256, 128, 64, 32, 16)

#: segmentation_models' decoder blocks: "upsample" (DecoderUpsamplingX2Block: up-sampling,
#: concatenation, two conv-BN-ReLU) and "transpose" (DecoderTransposeX2Block: 4x4 transposed
#: conv-BN-ReLU, concatenation, one conv-BN-ReLU).
_SM_BLOCKS = {
    "upsample": {"up": {"mode": "upsample", "kernel_size": 0}, "convs": 2},
    "transpose": {"up": {"mode": "transpose", "kernel_size": 4, "batch_norm": True, "relu": True}, "convs": 1},
}


def sm_decoder_block(upsampling):
    """A decoder ``block(x, skips, filters, name)`` with segmentation_models' layout."""
    check_upsampling(upsampling)
    return functools.partial(decoder_block, batch_norm=True, **_SM_BLOCKS[upsampling])


def encoder_model(
    decoder,
    encoder="vgg16",
    encoder_weights=None,
    encoder_freeze=False,
    decoder_filters=DECODER_FILTERS,
    upsampling="upsample",
    classes=1,
    activation=None,
    head="foreground",
    input_shape=(None, None, 3),
    name=None,
):
    """``decoder(bottom, skips, decoder_filters, block)`` on encoder ``encoder`` (see ``encoders``).

    ``block`` is segmentation_models' decoder block (``upsampling``); the head is its 3x3
    ``final_conv`` (here ``logits``), ``foreground``, ``three_class`` or ``hv`` (``head``,
    :mod:`~nuclei_tf.models.heads`). The model is named ``{decoder name}_{encoder}``.
    Height and width must be multiples of 32.
    """
    inputs, x = image_input(input_shape, ENCODER_STRIDE)
    bottom, skips = encode(x, encoder, encoder_weights, encoder_freeze)
    x = decoder(bottom, skips, decoder_filters, sm_decoder_block(upsampling))
    outputs = segmentation_head(x, classes, activation, kernel_size=3, head=head)
    return keras.Model(inputs, outputs, name=name or f"{decoder.__name__.removesuffix('_decoder')}_{encoder}")


def unet_decoder(bottom, skips, filters, block):
    """segmentation_models' Unet decoder: one block per filter entry, the last ones without skip."""
    return expanding_path(bottom, skips + [None] * (len(filters) - len(skips)), filters, block)


register(
    "unet_encoder",
    description="U-Net on a keras.applications/ResNeXt encoder (Lagree 2021, Kasturi 2022), sm.Unet layout.",
    decoder=unet_decoder,
)(encoder_model)
