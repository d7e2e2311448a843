"""Pretrainable encoders (keras.applications and ResNeXt) and the feature maps a decoder takes.

Skip layers are the four of segmentation_models 1.0.1 (Lagree 2021 built its U-Nets with it),
named in keras.applications' layers; InceptionV3's two shallow ones are unnamed there and are
given by index. Every encoder down-samples 5 times: inputs must be multiples of 32.
"""
import dataclasses
import functools

import keras

from nuclei_tf.models.blocks import conv_unit
from nuclei_tf.models.pretrained import load_backbone
from nuclei_tf.models.resnext import resnext

apps = keras.applications


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """How to build an encoder: its constructor, skip layers and ImageNet weights file."""

    constructor: object
    #: skip layers, deepest (x16) first: layer names or, for unnamed layers, indices
    skips: tuple
    #: the file keras.applications downloads for ``weights="imagenet"`` (None: no such weights)
    imagenet_file: object
    #: the input preprocessing the ImageNet weights expect
    preprocess: object
    #: two 512-filter conv units after the last max pooling (segmentation_models, VGG)
    center: bool = False


def inception_v3_same_padding(input_shape, weights):
    """keras.applications' InceptionV3 with 'same' padding everywhere (as segmentation_models'),
    so its feature maps are exactly 1/2, ..., 1/32 of the input; same weights."""
    reference = apps.InceptionV3(include_top=False, weights=weights, input_shape=input_shape)
    config = reference.get_config()
    for layer in config["layers"]:
        if layer["config"].get("padding") == "valid":
            layer["config"]["padding"] = "same"
    model = keras.Model.from_config(config)
    model.set_weights(reference.get_weights())
    return model


def _resnext_constructor(arch):
    def constructor(input_shape, weights):
        return resnext(arch, input_shape)

    return constructor


def _keras_file(stem):
    return f"{stem}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _app(constructor):
    return functools.partial(constructor, include_top=False)


_VGG = ("block5_conv{0}", "block4_conv{0}", "block3_conv{0}", "block2_conv2")
_DENSENET = ("pool4_conv", "pool3_conv", "pool2_conv", "conv1_relu")
_EFFICIENTNET = (
    "block6a_expand_activation",
    "block4a_expand_activation",
    "block3a_expand_activation",
    "block2a_expand_activation",
)


def _resnet_skips(stage3_blocks, stage4_blocks):
    return (f"conv4_block{stage4_blocks}_out", f"conv3_block{stage3_blocks}_out", "conv2_block3_out", "conv1_relu")


ENCODERS = {
    "vgg16": EncoderSpec(
        _app(apps.VGG16), tuple(s.format(3) for s in _VGG), _keras_file("vgg16"), apps.vgg16.preprocess_input, True
    ),
    "vgg19": EncoderSpec(
        _app(apps.VGG19), tuple(s.format(4) for s in _VGG), _keras_file("vgg19"), apps.vgg19.preprocess_input, True
    ),
    "resnet50": EncoderSpec(_app(apps.ResNet50), _resnet_skips(4, 6), _keras_file("resnet50"), apps.resnet.preprocess_input),
    "resnet101": EncoderSpec(
        _app(apps.ResNet101), _resnet_skips(4, 23), _keras_file("resnet101"), apps.resnet.preprocess_input
    ),
    "resnet152": EncoderSpec(
        _app(apps.ResNet152), _resnet_skips(8, 36), _keras_file("resnet152"), apps.resnet.preprocess_input
    ),
    "resnext50": EncoderSpec(_resnext_constructor("resnext50"), _resnet_skips(4, 6), None, apps.densenet.preprocess_input),
    "resnext101": EncoderSpec(
        _resnext_constructor("resnext101"), _resnet_skips(4, 23), None, apps.densenet.preprocess_input
    ),
    "densenet121": EncoderSpec(
        _app(apps.DenseNet121), _DENSENET, _keras_file("densenet121"), apps.densenet.preprocess_input
    ),
    "densenet201": EncoderSpec(
        _app(apps.DenseNet201), _DENSENET, _keras_file("densenet201"), apps.densenet.preprocess_input
    ),
    "inceptionv3": EncoderSpec(
        inception_v3_same_padding,
        ("mixed7", "mixed2", 16, 9),
        _keras_file("inception_v3"),
        apps.inception_v3.preprocess_input,
    ),
    **{
        f"efficientnetb{k}": EncoderSpec(
            _app(getattr(apps, f"EfficientNetB{k}")),
            _EFFICIENTNET,
            f"efficientnetb{k}_notop.h5",
            apps.efficientnet.preprocess_input,
        )
        for k in range(6)
    },
}

#: the down-sampling factor of every encoder: inputs must be multiples of it
ENCODER_STRIDE = 32


def get_encoder_spec(name):
    """The ``EncoderSpec`` of ``name``; a ``ValueError`` listing the encoders otherwise."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; available encoders: {', '.join(ENCODERS)}") from None


def _layer(backbone, key):
    return backbone.layers[key] if isinstance(key, int) else backbone.get_layer(key)


def build_encoder(name, channels=3, weights=None, freeze=False):
    """A ``keras.Model`` named ``encoder_{name}`` mapping an image to ``[bottom, x16, x8, ...]``.

    ``bottom`` is the backbone output (1/32 of the input), followed by the skip feature maps,
    deepest first. ``weights``: see ``pretrained.load_backbone``; ``freeze`` makes it untrainable.
    """
    spec = get_encoder_spec(name)
    backbone = load_backbone(name, spec.constructor, spec.imagenet_file, (None, None, channels), weights)
    outputs = [backbone.output] + [_layer(backbone, key).output for key in spec.skips]
    encoder = keras.Model(backbone.input, outputs, name=f"encoder_{name}")
    encoder.trainable = not freeze
    return encoder


def encode(x, encoder, encoder_weights=None, encoder_freeze=False):
    """``(bottom, skips)`` of image tensor ``x`` through encoder ``encoder`` (skips deepest first).

    VGG's bottom goes through segmentation_models' center block (two 512-filter conv units).
    """
    bottom, *skips = build_encoder(encoder, x.shape[-1], encoder_weights, encoder_freeze)(x)
    if get_encoder_spec(encoder).center:
        for index in (1, 2):
            bottom = conv_unit(bottom, 512, f"center_block{index}", batch_norm=True)
    return bottom, skips
