"""Encoder weights: none, ImageNet (keras.applications download) or a local weights file."""
import os

WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")


class EncoderWeightsError(RuntimeError):
    """The requested encoder weights cannot be obtained."""


def keras_models_dir():
    """The folder where ``keras.utils.get_file`` caches application weights."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "models")


def load_backbone(name, constructor, imagenet_file, input_shape, weights):
    """``constructor(input_shape=..., weights=...)`` with ``weights`` resolved.

    ``weights``: ``None`` (random), ``"imagenet"`` (keras.applications downloads ``imagenet_file``
    into ``keras_models_dir()``; offline, an ``EncoderWeightsError`` says where to place it) or
    the path of a weights file (``.weights.h5`` from ``save_weights``, a legacy ``.h5`` such as
    keras.applications', or a ``.keras`` file).
    """
    if weights is None:
        return constructor(input_shape=input_shape, weights=None)
    if weights == "imagenet":
        return _imagenet_backbone(name, constructor, imagenet_file, input_shape)
    path = os.fspath(weights)
    if not path.endswith(WEIGHTS_SUFFIXES):
        raise ValueError(
            f"encoder_weights must be None, 'imagenet' or a path ending in {', '.join(WEIGHTS_SUFFIXES)}; got {path!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"encoder weights file not found: {path}")
    backbone = constructor(input_shape=input_shape, weights=None)
    backbone.load_weights(path)
    return backbone


def _imagenet_backbone(name, constructor, imagenet_file, input_shape):
    if imagenet_file is None:
        raise EncoderWeightsError(
            f"keras.applications distributes no ImageNet weights for encoder {name!r}; pass "
            "encoder_weights='/path/to/weights.h5' (e.g. weights converted from torchvision)"
        )
    try:
        return constructor(input_shape=input_shape, weights="imagenet")
    except Exception as err:
        raise EncoderWeightsError(
            f"could not get the ImageNet weights of encoder {name!r} ({err}). Offline? Download "
            f"{imagenet_file!r} from the keras-applications storage and place it in "
            f"{keras_models_dir()}/ (where keras.utils.get_file looks), or pass "
            f"encoder_weights='/path/to/{imagenet_file}'"
        ) from err
