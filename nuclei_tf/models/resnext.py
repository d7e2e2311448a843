"""ResNeXt (Xie 2017, Table 1) feature extractors with grouped convolutions.

Kasturi 2022 used ResNeXt50-32x4d and ResNeXt101-32x8d. Layers are named like
``keras.applications.ResNet50`` (``conv1_relu``, ``conv2_block3_out``, ...); the stride sits in
the grouped 3x3 conv, as in torchvision, so weights converted from there fit.
"""
import keras
from keras import layers

#: name -> (blocks per stage, cardinality, width of one group in the first stage)
RESNEXT_CONFIGS = {
    "resnext50": ((3, 4, 6, 3), 32, 4),
    "resnext101": ((3, 4, 23, 3), 32, 8),
}


def _conv_bn(x, filters, kernel_size, name, strides=1, groups=1, relu=True):
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", groups=groups, use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def aggregated_block(x, width, out_filters, cardinality, strides, name):
    """Bottleneck with aggregated transformations (Xie 2017 Fig. 3c): 1x1, grouped 3x3, 1x1, + shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != out_filters:
        shortcut = _conv_bn(x, out_filters, 1, f"{name}_0", strides=strides, relu=False)
    x = _conv_bn(x, width, 1, f"{name}_1")
    x = _conv_bn(x, width, 3, f"{name}_2", strides=strides, groups=cardinality)
    x = _conv_bn(x, out_filters, 1, f"{name}_3", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnext(arch, input_shape=(None, None, 3)):
    """The ResNeXt ``arch`` ("resnext50" or "resnext101") without its classifier."""
    stages, cardinality, group_width = RESNEXT_CONFIGS[arch]
    inputs = keras.Input(input_shape)
    x = _conv_bn(inputs, 64, 7, "conv1", strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, blocks in enumerate(stages):
        width = cardinality * group_width * 2**stage
        for block in range(1, blocks + 1):
            strides = 2 if stage and block == 1 else 1
            x = aggregated_block(x, width, 256 * 2**stage, cardinality, strides, f"conv{stage + 2}_block{block}")
    return keras.Model(inputs, x, name=arch)
