"""Architectures: registry, shapes, heads, input checks, round trips, GB U-Net, ensemble, encoders.

Tiny models (64x64 inputs, B=4) keep every test fast; parameter counts are in test_models_counts.py.
"""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from nuclei_tf.cli.models import models as models_command
from nuclei_tf.cli.models import measure
from nuclei_tf.models import EncoderWeightsError, build_encoder, build_model, get_spec, list_models
from nuclei_tf.models.heads import model_head
from nuclei_tf.models.layers import InputSizeCheck

ARCHS = ["unet", "unet_modified", "unet_plus", "unetpp", "unet_encoder", "unetpp_encoder", "gbunet", "ensemble"]
TINY = {
    "unet": {"base_filters": 4, "depth": 3},
    "unet_modified": {"base_filters": 4, "depth": 3},
    "unet_plus": {"base_filters": 4, "depth": 3},
    "unet_plus_us": {"base_filters": 4, "depth": 3, "upsampling": "upsample"},
    "unetpp": {"base_filters": 4, "depth": 3},
}
MEMBER = {"arch": "unet_plus", "base_filters": 4, "depth": 3, "classes": 2}


def tiny(key, **options):
    arch = "unet_plus" if key == "unet_plus_us" else key
    return build_model(arch, **TINY[key], **options)


def images(size=64, batch=2, channels=3, seed=0):
    return np.random.default_rng(seed).random((batch, size, size, channels), dtype=np.float32)


def run(model, x):
    """The model's outputs on ``x`` as numpy arrays (a list for several outputs); eager, untraced."""
    outputs = model(x, training=False)
    return [np.asarray(o) for o in outputs] if isinstance(outputs, (list, tuple)) else np.asarray(outputs)


def as_list(outputs):
    return outputs if isinstance(outputs, list) else [outputs]


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


# --- registry -------------------------------------------------------------------------------


def test_registry_lists_every_arch_with_common_options():
    assert [spec.name for spec in list_models()] == ARCHS
    for spec in list_models():
        assert {"input_shape", "name"} <= set(spec.options), spec.name
    assert "batch_norm" not in get_spec("unet_modified").options  # fixed by the arch


def test_unknown_arch_and_option_are_clear_errors():
    with pytest.raises(ValueError, match="registered archs: unet, unet_modified"):
        build_model("unet3")
    with pytest.raises(ValueError, match=r"unknown option\(s\) encoder .*valid options: base_filters, depth"):
        build_model("unet", encoder="vgg16")
    with pytest.raises(ValueError, match="upsampling must be one of"):
        build_model("unet_plus", upsampling="bilinear")
    with pytest.raises(ValueError, match="unknown encoder 'vgg11'; available encoders: vgg16"):
        build_model("unet_encoder", encoder="vgg11")


# --- from-scratch models: shapes and heads ---------------------------------------------------


@pytest.mark.parametrize("key", sorted(TINY))
@pytest.mark.parametrize("classes", [1, 2])
def test_shapes_logits_and_float32_probabilities(key, classes):
    model = tiny(key, classes=classes)
    probabilities = run(model, images())
    assert probabilities.shape == (2, 64, 64, classes) and probabilities.dtype == np.float32
    logits = run(keras.Model(model.input, model.get_layer("logits").output), images())
    expected = tf.sigmoid(logits) if classes == 1 else tf.nn.softmax(logits)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


THREE_CLASS = {
    **{key: lambda key=key: tiny(key, head="three_class") for key in ("unet", "unet_modified", "unet_plus", "unetpp")},
    "unetpp_deep_supervision": lambda: tiny("unetpp", head="three_class", deep_supervision=True),
    "unet_encoder": lambda: build_model("unet_encoder", encoder="vgg16", head="three_class"),
    "unetpp_encoder": lambda: build_model("unetpp_encoder", head="three_class"),
}


@pytest.mark.parametrize("key", sorted(THREE_CLASS))
def test_three_class_head_is_a_float32_softmax_over_three_channels(key):
    model = THREE_CLASS[key]()
    for probabilities in as_list(run(model, images())):
        assert probabilities.shape == (2, 64, 64, 3) and probabilities.dtype == np.float32
    logits = run(keras.Model(model.input, model.get_layer("logits").output), images())
    np.testing.assert_allclose(as_list(run(model, images()))[-1], tf.nn.softmax(logits), atol=1e-6)
    assert model_head(model) == "three_class" and model.get_layer("logits").filters == 3
    rebuilt = keras.Model.from_config(model.get_config())
    assert model_head(rebuilt) == "three_class" and model_head(tiny("unet_plus")) == "foreground"


HV = {
    **{key: lambda key=key: tiny(key, head="hv") for key in ("unet", "unet_plus", "unetpp")},
    "unetpp_deep_supervision": lambda: tiny("unetpp", head="hv", deep_supervision=True),
    "unet_encoder": lambda: build_model("unet_encoder", encoder="vgg16", head="hv"),
}


@pytest.mark.parametrize("key", sorted(HV))
def test_hv_head_is_two_linear_maps_then_a_float32_np_softmax(key):
    """HoVer-Net's branches on the decoder: h, v (no activation), then background, nucleus."""
    model = HV[key]()
    for outputs in as_list(run(model, images())):
        assert outputs.shape == (2, 64, 64, 4) and outputs.dtype == np.float32
    outputs = as_list(run(model, images()))[-1]
    maps = run(keras.Model(model.input, model.get_layer("hv_maps").output), images())
    logits = run(keras.Model(model.input, model.get_layer("logits").output), images())
    np.testing.assert_allclose(outputs[..., :2], maps, atol=1e-6)
    np.testing.assert_allclose(outputs[..., 2:], tf.nn.softmax(logits), atol=1e-6)
    assert model_head(model) == "hv" and model_head(keras.Model.from_config(model.get_config())) == "hv"


RAYS = {
    **{key: lambda key=key: tiny(key, head="rays") for key in ("unet", "unet_plus", "unetpp")},
    "unet_encoder": lambda: build_model("unet_encoder", encoder="vgg16", head="rays"),
}


@pytest.mark.parametrize("key", sorted(RAYS))
def test_rays_head_is_32_linear_distances_then_a_float32_object_probability(key):
    """StarDist's outputs on the decoder: 32 ray distances (no activation), then a sigmoid."""
    model = RAYS[key]()
    outputs = as_list(run(model, images()))[-1]
    assert outputs.shape == (2, 64, 64, 33) and outputs.dtype == np.float32
    distances = run(keras.Model(model.input, model.get_layer("star_distances").output), images())
    logit = run(keras.Model(model.input, model.get_layer("logits").output), images())
    np.testing.assert_allclose(outputs[..., :32], distances, atol=1e-5)
    np.testing.assert_allclose(outputs[..., 32:], tf.nn.sigmoid(logit), atol=1e-6)
    assert model_head(model) == "rays" and model_head(keras.Model.from_config(model.get_config())) == "rays"


def test_three_class_head_errors_and_stacked_models_refuse_it():
    with pytest.raises(ValueError, match="head must be one of foreground, three_class, hv, rays"):
        tiny("unet", head="boundary")
    with pytest.raises(ValueError, match="the hv head has 4 fixed channels"):
        tiny("unet_plus", head="hv", classes=2)
    with pytest.raises(ValueError, match="the rays head has 33 fixed channels"):
        tiny("unet_plus", head="rays", activation="sigmoid")
    with pytest.raises(ValueError, match="the three_class head has 3 fixed channels"):
        tiny("unet_plus", head="three_class", classes=2)
    assert tiny("unet_plus", head="three_class", classes=3).output.shape[-1] == 3
    member = dict(MEMBER, head="three_class", classes=1)
    for arch in ("gbunet", "ensemble"):
        with pytest.raises(ValueError, match=r"members must have the foreground head; member 1 \(unet_plus: three_class\)"):
            build_model(arch, members=[MEMBER, member])
        with pytest.raises(ValueError, match="unknown option"):
            build_model(arch, members=[MEMBER, MEMBER], head="three_class")


def test_modified_unet_has_batchnorm_after_every_3x3_conv():
    model = tiny("unet_modified")
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3)]
    assert convs and all(model.get_layer(name.replace("_conv", "_bn")) for name in convs)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in tiny("unet").layers)


def test_unet_plus_blocks_follow_long_fig5a():
    names = {layer.name for layer in build_model("unet_plus", base_filters=4).layers}
    # C10 -> C11 -> C12 -> D13 -> D23 -> U2 (Long 2020, "Model structure"), N = 5
    assert {"C10_conv", "C12_conv", "D13_conv", "D23_conv", "D41_conv", "C41_conv", "U1_a_conv"} <= names
    assert "C15_concat" in names and not {"C50_conv", "D51_conv", "C24_conv"} & names
    model = build_model("unet_plus", base_filters=4)
    assert model.get_layer("D41_conv").filters == 64 and model.get_layer("C32_conv").filters == 16


def test_unetpp_deep_supervision_and_pruning():
    full = build_model("unetpp", base_filters=4, depth=4, deep_supervision=True)
    outputs = run(full, images())
    assert [o.shape for o in outputs] == [(2, 64, 64, 1)] * 3
    assert full.output_names == ["probabilities_l1", "probabilities_l2", "probabilities"]
    pruned = build_model("unetpp", base_filters=4, depth=4, prune=1)
    assert {layer.name for layer in pruned.layers} < {layer.name for layer in full.layers}
    assert pruned.get_layer("input_size_check").multiple == 2
    assert run(pruned, images(size=34)).shape == (2, 34, 34, 1)
    with pytest.raises(ValueError, match="prune must be in 1..3"):
        build_model("unetpp", depth=4, prune=4)


def test_unetpp_l2_penalty_is_lambda():
    model = build_model("unetpp", base_filters=4, depth=3, l2=1e-4)
    assert model.get_layer("X_1_1_a_conv").kernel_regularizer.l2 == pytest.approx(1e-4)
    assert model.losses  # the penalties are collected


# --- input sizes -----------------------------------------------------------------------------


def test_static_input_size_must_be_divisible():
    with pytest.raises(ValueError, match="input size 70x64 is not divisible by 32"):
        build_model("unet_encoder", input_shape=(70, 64, 3))
    with pytest.raises(ValueError, match="not divisible by 16"):
        build_model("unet_plus", base_filters=4, input_shape=(64, 40, 3))
    assert build_model("unet_plus", base_filters=4, input_shape=(48, 80, 3)).output.shape == (None, 48, 80, 1)


def test_dynamic_input_size_checked_at_call_time():
    model = tiny("unet_plus")  # depth 3: multiples of 4
    assert run(model, images(size=36)).shape == (2, 36, 36, 1)
    with pytest.raises(ValueError, match="input size 38x38 is not divisible by 4"):
        model(images(size=38))
    traced = tf.function(model, input_signature=[tf.TensorSpec((None, None, None, 3))])
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be divisible by 4"):
        traced(images(size=38))


def test_input_size_check_is_serialisable():
    layer = InputSizeCheck(8, name="check")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, InputSizeCheck) and clone.multiple == 8 and clone.name == "check"


# --- round trips and mixed precision ---------------------------------------------------------


def _members_options(tmp_path):
    path = tmp_path / "member.keras"
    build_model(**MEMBER).save(path)
    return [str(path), dict(MEMBER, arch="unet", name="unet_member")]


ROUND_TRIPS = {
    **{key: lambda tmp_path, key=key: tiny(key) for key in TINY},
    "unet_plus_three_class": lambda tmp_path: tiny("unet_plus", head="three_class"),
    "unetpp_deep_supervision": lambda tmp_path: tiny("unetpp", deep_supervision=True, dropout=0.1),
    "unet_encoder_vgg16": lambda tmp_path: build_model("unet_encoder", encoder="vgg16", classes=2),
    "gbunet": lambda tmp_path: build_model("gbunet", members=_members_options(tmp_path), base_filters=4, depth=3),
    "ensemble": lambda tmp_path: build_model("ensemble", members=_members_options(tmp_path)),
}


@pytest.mark.parametrize("key", sorted(ROUND_TRIPS))
def test_keras_round_trip_in_safe_mode(key, tmp_path):
    model = ROUND_TRIPS[key](tmp_path)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for expected, actual in zip(as_list(run(model, images())), as_list(run(loaded, images()))):
        np.testing.assert_array_equal(expected, actual)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in loaded._flatten_layers())


def test_outputs_are_float32_under_mixed_precision(mixed_precision):
    model = tiny("unet_plus", classes=2)
    assert model.get_layer("logits").compute_dtype == "float16"
    assert run(model, images()).dtype == np.float32
    assert run(tiny("unet_plus", head="three_class"), images()).dtype == np.float32
    ensemble = build_model("ensemble", members=[MEMBER, MEMBER])
    assert run(ensemble, images()).dtype == np.float32


# --- GB U-Net and ensemble ---------------------------------------------------------------------


def test_gbunet_stacks_frozen_member_logits_with_the_image(tmp_path):
    saved = build_model(**MEMBER)
    saved.save(tmp_path / "saved.keras")
    model = build_model("gbunet", members=[str(tmp_path / "saved.keras"), build_model(**MEMBER)], base_filters=4, depth=3)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert names[2:4] == ["member_0_unet_plus", "member_1_unet_plus"]
    assert model.get_layer("stage2_input").output.shape[-1] == 3 + 2 * 2
    assert model.get_layer("stage2_down0_a_dropout") and model.get_layer("stage2_down2_b_bn")
    member_logits = run(model.get_layer("member_0_unet_plus"), images())
    np.testing.assert_allclose(
        member_logits, run(keras.Model(saved.input, saved.get_layer("logits").output), images()), atol=1e-6
    )
    before = [w.numpy().copy() for w in model.get_layer("member_1_unet_plus").weights]
    targets = np.eye(2, dtype=np.float32)[np.random.default_rng(0).integers(0, 2, (1, 32, 32))]
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(targets, model(images(size=32, batch=1), training=True))
    keras.optimizers.Adam().apply(tape.gradient(loss, model.trainable_weights), model.trainable_weights)
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, model.get_layer("member_1_unet_plus").weights))
    assert not any(model.get_layer(f"member_{index}_unet_plus").trainable_weights for index in range(2))


def test_gbunet_input_multiple_covers_members():
    deep_member = dict(MEMBER, depth=5)  # multiples of 16
    model = build_model("gbunet", members=[deep_member], base_filters=4, depth=3)
    assert model.get_layer("input_size_check").multiple == 16
    with pytest.raises(TypeError, match="a member must be"):
        build_model("gbunet", members=[42])


def test_ensemble_is_the_pixelwise_mean_of_member_probabilities():
    members = [build_model(**MEMBER), build_model(**dict(MEMBER, arch="unet"))]
    model = build_model("ensemble", members=members)
    expected = np.mean([run(member, images()) for member in members], axis=0)
    np.testing.assert_allclose(run(model, images()), expected, atol=1e-6)
    assert not model.trainable_weights
    with pytest.raises(ValueError, match="at least two members"):
        build_model("ensemble", members=[MEMBER])


# --- encoders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoder", ["vgg16", "resnet50", "densenet121", "inceptionv3", "efficientnetb0", "resnext50"])
def test_encoder_feature_maps_halve_at_every_level(encoder):
    features = build_encoder(encoder)(images())
    assert [f.shape[1] for f in features] == [2, 4, 8, 16, 32]


def test_encoder_models_run_at_any_multiple_of_32():
    model = build_model("unetpp_encoder", encoder="efficientnetb0", classes=2)
    assert run(model, np.zeros((1, 64, 96, 3), np.float32)).shape == (1, 64, 96, 2)


def test_encoder_freeze():
    model = build_model("unet_encoder", encoder="resnet50", encoder_freeze=True)
    assert not model.get_layer("encoder_resnet50").trainable_weights
    assert model.trainable_weights and model.get_layer("logits").trainable


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_encoder_weights_from_a_local_file(suffix, tmp_path):
    encoder = build_encoder("efficientnetb0")
    path = tmp_path / f"encoder{suffix}"
    if suffix == ".weights.h5":
        encoder.save_weights(path)
    else:  # a legacy file, like the ones keras.applications downloads
        h5py = pytest.importorskip("h5py")
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(path, "w") as file:
            legacy_h5_format.save_weights_to_hdf5_group(file, encoder)
    model = build_model("unet_encoder", encoder="efficientnetb0", encoder_weights=str(path))
    for expected, actual in zip(encoder.weights, model.get_layer("encoder_efficientnetb0").weights):
        np.testing.assert_array_equal(expected.numpy(), actual.numpy())


def test_encoder_weights_errors(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(EncoderWeightsError, match=r"vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5.*\.keras/models"):
        build_model("unet_encoder", encoder="vgg16", encoder_weights="imagenet")
    with pytest.raises(EncoderWeightsError, match="no ImageNet weights for encoder 'resnext50'"):
        build_encoder("resnext50", weights="imagenet")
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        build_encoder("vgg16", weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="encoder_weights must be None, 'imagenet' or a path"):
        build_encoder("vgg16", weights="imagenet21k")


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_lists_archs_with_options():
    result = CliRunner().invoke(models_command, ["--json", "--no-params"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["arch"] for row in rows] == ARCHS
    assert rows[2]["options"]["upsampling"] == "transpose" and rows[2]["params"] is None
    table = CliRunner().invoke(models_command, ["--no-params"]).output
    assert "unet_plus" in table and "options: base_filters=16, depth=5" in table


def test_cli_measures_the_default_model():
    assert measure(get_spec("unet_plus")) == (1_926_353, 16)
