"""U-Net (Ronneberger 2015 Fig. 1) and the modified U-Net with BatchNorm (Kasturi 2022 Fig. 3)."""
import functools

import keras
from keras import layers

from nuclei_tf.models.blocks import check_upsampling, decoder_block
from nuclei_tf.models.heads import segmentation_head
from nuclei_tf.models.inputs import image_input
from nuclei_tf.models.paths import contracting_path, expanding_path
from nuclei_tf.models.registry import register


def level_filters(base_filters, depth):
    """Filters per level, ``2^(n-1) B`` for n = 1..N (Long 2020, "Model structure")."""
    if depth < 2:
        raise ValueError(f"depth must be >= 2; got {depth}")
    return [base_filters * 2**level for level in range(depth)]


@register(
    "unet_modified",
    description="Modified U-Net (Kasturi 2022 Fig. 3): U-Net with BatchNorm after every 3x3 conv.",
    batch_norm=True,
)
@register("unet")
def unet(
    base_filters=64,
    depth=5,
    upsampling="upsample",
    batch_norm=False,
    dropout=0.0,
    classes=1,
    activation=None,
    head="foreground",
    input_shape=(None, None, 3),
    name=None,
):
    """U-Net (Ronneberger 2015 Fig. 1) with B filters at the first of N levels; same padding.

    Each level has two 3x3 conv-ReLU units (``batch_norm``: BatchNorm after every conv, Kasturi
    2022); ``dropout`` is applied at the end of the contracting path. ``upsampling="upsample"`` is
    Ronneberger's "up-convolution" (up-sampling then a 2x2 conv), ``"transpose"`` a 2x2 stride-2
    transposed conv; both have the same weights. B=16, N=5 gives Long 2020 Table 1's 1.941M.
    ``head``: ``foreground``, ``three_class`` or ``hv`` (:mod:`~nuclei_tf.models.heads`).
    Height and width must be multiples of 2^(N-1).
    """
    check_upsampling(upsampling)
    filters = level_filters(base_filters, depth)
    inputs, x = image_input(input_shape, 2 ** (depth - 1))
    features = contracting_path(x, filters, "down{}", batch_norm=batch_norm)
    bottom = features[-1]
    if dropout:
        bottom = layers.Dropout(dropout, name="bottom_dropout")(bottom)
    block = functools.partial(decoder_block, up={"mode": upsampling}, batch_norm=batch_norm)
    x = expanding_path(bottom, features[-2::-1], filters[-2::-1], block)
    outputs = segmentation_head(x, classes, activation, head=head)
    return keras.Model(inputs, outputs, name=name or ("unet_modified" if batch_norm else "unet"))
