"""Parameter counts against the papers (Long 2020 Tables 1-2), torchvision's ResNeXt and
segmentation_models 1.0.1's Unet (the `sm` extra; skipped when it is not installed)."""
import os

import keras
import pytest

from nuclei_tf.models import build_model
from nuclei_tf.models.resnext import resnext

#: Long 2020 Table 1 (B = 16) and Table 2 (B = 8), N = 5, in millions of weights
LONG_2020 = {
    16: {"unet": 1.941, "unetpp": 2.262, "unet_plus_tc": 1.926, "unet_plus_us": 1.730},
    8: {"unet": 0.486, "unetpp": 0.566, "unet_plus_tc": 0.484, "unet_plus_us": 0.435},
}
LONG_OPTIONS = {
    "unet": ("unet", {}),
    "unetpp": ("unetpp", {}),
    "unet_plus_tc": ("unet_plus", {"upsampling": "transpose"}),
    "unet_plus_us": ("unet_plus", {"upsampling": "upsample"}),
}


@pytest.mark.parametrize("base_filters", sorted(LONG_2020))
@pytest.mark.parametrize("model", sorted(LONG_OPTIONS))
def test_long_2020_weight_counts(model, base_filters):
    """Grey-scale inputs as in Long 2020; within 0.5% and equal at the printed precision."""
    arch, options = LONG_OPTIONS[model]
    count = build_model(arch, base_filters=base_filters, depth=5, input_shape=(None, None, 1), **options).count_params()
    paper = LONG_2020[base_filters][model]
    assert abs(count / 1e6 - paper) / paper < 0.005
    assert round(count / 1e6, 3) == paper


@pytest.mark.parametrize(("arch", "torchvision"), [("resnext50", 25_028_904), ("resnext101", 88_791_336)])
def test_resnext_matches_torchvision_parameter_count(arch, torchvision):
    """torchvision's resnext50_32x4d / resnext101_32x8d less their 2048x1000 classifier."""
    model = resnext(arch)
    trainable = sum(int(keras.ops.size(weight)) for weight in model.trainable_weights)
    assert trainable == torchvision - (2048 * 1000 + 1000)


# --- segmentation_models 1.0.1 ------------------------------------------------------------------

#: our total minus sm's: 0 where both use the same encoder code; EfficientNet: keras.applications'
#: Normalization layer (mean, variance, count); ResNeXt50: sm's input BatchNorm `bn_data`.
#: None: a different encoder implementation (sm's ResNets come from classification_models,
#: sm's resnext101 is 32x4d, Kasturi's ours 32x8d): only the decoders are compared.
SM_TOTAL_DIFFERENCE = {
    "vgg16": 0,
    "vgg19": 0,
    "inceptionv3": 0,
    "efficientnetb0": 7,
    "resnet50": None,
}
#: sm's ResNeXts build slowly (their groups are Lambda-sliced convolutions)
SM_SLOW = {
    "resnext50": -9,
    "resnet101": None,
    "resnet152": None,
    "resnext101": None,
    **{f"efficientnetb{k}": 7 for k in range(1, 6)},
}


@pytest.fixture(scope="module")
def sm():
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    return pytest.importorskip("segmentation_models")


def sm_decoder_params(model):
    """Parameters of a segmentation_models Unet outside its (flat) backbone."""
    return sum(
        layer.count_params() for layer in model.layers if layer.name.startswith(("decoder_", "center_block", "final_conv"))
    )


def compare_with_sm(sm, encoder, total_difference, upsampling="upsample"):
    size = 96 if encoder == "inceptionv3" else 64  # keras.applications' InceptionV3 minimum is 75
    theirs = sm.Unet(
        encoder,
        input_shape=(size, size, 3),
        encoder_weights=None,
        decoder_block_type="upsampling" if upsampling == "upsample" else "transpose",
    )
    ours = build_model("unet_encoder", encoder=encoder, upsampling=upsampling, input_shape=(size, size, 3))
    our_decoder = ours.count_params() - ours.get_layer(f"encoder_{encoder}").count_params()
    assert our_decoder == sm_decoder_params(theirs)
    if total_difference is not None:
        assert ours.count_params() - theirs.count_params() == total_difference


@pytest.mark.parametrize("encoder", sorted(SM_TOTAL_DIFFERENCE))
def test_unet_encoder_matches_segmentation_models(sm, encoder):
    compare_with_sm(sm, encoder, SM_TOTAL_DIFFERENCE[encoder])


def test_transpose_decoder_matches_segmentation_models(sm):
    compare_with_sm(sm, "vgg16", 0, upsampling="transpose")


@pytest.mark.slow
@pytest.mark.parametrize("encoder", sorted(SM_SLOW))
def test_unet_encoder_matches_segmentation_models_slow(sm, encoder):
    compare_with_sm(sm, encoder, SM_SLOW[encoder])


def expected_decoder_params(bottom, skips, filters=(256, 128, 64, 32, 16), classes=1):
    """segmentation_models' Unet decoder count: per block two 3x3 conv (no bias) + BatchNorm (4 per
    channel) on [up-sampled input, skip], then the 3x3 final conv with bias."""
    count, channels = 0, bottom
    for block_filters, skip in zip(filters, list(skips) + [0] * (len(filters) - len(skips))):
        count += 9 * (channels + skip) * block_filters + 9 * block_filters**2 + 2 * 4 * block_filters
        channels = block_filters
    return count + 9 * channels * classes + classes


@pytest.mark.parametrize(
    ("encoder", "bottom", "skips"),
    [("resnet50", 2048, (1024, 512, 256, 64)), ("densenet121", 1024, (512, 256, 128, 64))],
)
def test_decoder_count_formula(encoder, bottom, skips):
    """DenseNets do not build in segmentation_models under Keras 3 (layer names with '/'): their
    decoder is checked against the count formula, itself checked on ResNet50 against sm above."""
    model = build_model("unet_encoder", encoder=encoder, input_shape=(64, 64, 3))
    assert model.count_params() - model.get_layer(f"encoder_{encoder}").count_params() == expected_decoder_params(
        bottom, skips
    )
