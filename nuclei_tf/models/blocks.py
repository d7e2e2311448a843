"""Building blocks shared by the architectures: conv units, up-sampling and decoder blocks."""
import keras
from keras import layers

UPSAMPLING_MODES = ("transpose", "upsample")


def check_upsampling(mode):
    """Raise a ``ValueError`` unless ``mode`` is ``"transpose"`` or ``"upsample"``."""
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}; got {mode!r}")


def conv_unit(
    x, filters, name, kernel_size=3, strides=1, batch_norm=False, use_bias=None, relu=True, dropout=0.0, l2=0.0,
    transpose=False,
):
    """Conv(kernel_size, strides) -> [BatchNorm] -> [ReLU] -> [Dropout], layers named ``{name}_conv`` etc.

    ``use_bias`` defaults to ``not batch_norm``; ``l2`` is the kernel's L2 penalty (Zhou 2018's
    lambda); ``transpose`` makes the conv a transposed one.
    """
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    x = conv(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batch_norm if use_bias is None else use_bias,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def up_sample(x, filters, name, mode, kernel_size=2, batch_norm=False, relu=False, l2=0.0):
    """Double the resolution.

    ``"transpose"``: ``Conv2DTranspose(filters, kernel_size, strides=2)``; ``"upsample"``:
    ``UpSampling2D`` then, when ``kernel_size``, a ``Conv2D(filters, kernel_size)`` (Ronneberger's
    "up-convolution"). Either convolution may be followed by BatchNorm and ReLU.
    """
    check_upsampling(mode)
    transpose = mode == "transpose"
    if not transpose:
        x = layers.UpSampling2D(2, name=f"{name}_upsampling")(x)
        if not kernel_size:
            return x
    return conv_unit(
        x, filters, f"{name}_up", kernel_size, 2 if transpose else 1, batch_norm, relu=relu, l2=l2, transpose=transpose
    )


def decoder_block(x, skips, filters, name, up, convs=2, **unit):
    """Up-sample ``x`` (``up``: keyword arguments of ``up_sample``), concatenate the same-resolution
    ``skips`` and apply ``convs`` conv units (``unit``: keyword arguments of ``conv_unit``)."""
    x = up_sample(x, filters, name, l2=unit.get("l2", 0.0), **up)
    if skips:
        x = layers.Concatenate(name=f"{name}_concat")([x, *skips])
    for suffix in "abcdefgh"[:convs]:
        x = conv_unit(x, filters, f"{name}_{suffix}", **unit)
    return x
