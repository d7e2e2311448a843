"""Inference precision: ``auto`` (default), ``float32`` or ``bfloat16``.

``auto`` is bfloat16 on a CPU with bfloat16 instructions and float32 everywhere else (GPUs
included, where it has not been measured): on the shipped U-Net+ bfloat16 moved per-image mean
AJI by -0.0003 / -0.0002 (monuseg-breast / tnbc) and ran the model 1.5x faster on a 2-core
AMD EPYC with AVX512-BF16 (README, *Performance*).

``bfloat16`` rebuilds a loaded model under Keras' ``mixed_bfloat16`` policy: weights stay
float32, convolutions and activations compute in bfloat16 (8 mantissa bits), and the
``probabilities`` head stays float32. On a CPU this is only faster where the hardware has
bfloat16 instructions (AVX512-BF16 or AMX, through oneDNN); elsewhere it would be emulated
and slower, so it is refused there rather than silently slowing a run down. Its effect on
the published numbers (AJI, PQ, F1) and its speed are measured in the README.
"""
import json
import tempfile
import zipfile
from pathlib import Path

INFERENCE_PRECISIONS = ("auto", "float32", "bfloat16")
#: CPU flags (``/proc/cpuinfo``) of the bfloat16 instructions oneDNN uses
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: layers whose output must stay float32 (the head's activation; see ``models.heads``)
FLOAT32_LAYERS = ("probabilities",)


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags (empty where ``/proc/cpuinfo`` does not exist, e.g. macOS)."""
    try:
        with open(path) as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bfloat16():
    """Whether the CPU has AVX512-BF16 or AMX (:data:`BF16_FLAGS`)."""
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def bfloat16_hardware():
    """Whether bfloat16 maths runs natively here: a GPU, or a CPU with AVX512-BF16 / AMX."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU")) or cpu_has_bfloat16()


def resolve_precision(precision="auto"):
    """The precision ``precision`` runs at here: ``auto`` -> bfloat16 on a CPU with
    AVX512-BF16/AMX and no GPU, else float32; others as given (after checking the name)."""
    if precision not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(INFERENCE_PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "float32"
    return "bfloat16" if cpu_has_bfloat16() else "float32"


def _set_policies(node, policy):
    """Set the dtype policy of every layer config under ``node`` (nested models included),
    except the float32 output layers; returns the number of layers changed."""
    changed = 0
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(config, dict) and isinstance(config.get("dtype"), dict) and node.get("class_name") != "InputLayer":
            if not str(config.get("name", "")).startswith(FLOAT32_LAYERS):
                config["dtype"] = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": policy},
                                   "registered_name": None}
                changed += 1
        changed += sum(_set_policies(value, policy) for value in node.values())
    elif isinstance(node, list):
        changed += sum(_set_policies(value, policy) for value in node)
    return changed


def _policy(precision):
    return "mixed_bfloat16" if precision == "bfloat16" else "float32"


def runnable_precision(precision="auto"):
    """:func:`resolve_precision`, refused where bfloat16 would be emulated."""
    precision = resolve_precision(precision)
    if precision == "bfloat16" and not bfloat16_hardware():
        raise ValueError("precision bfloat16 needs a GPU or a CPU with AVX512-BF16 or AMX instructions; this CPU has "
                         "neither, so bfloat16 would be emulated and slower than float32")
    return precision


def computes_at(model):
    """The Keras policy names ``model``'s layers compute under (inputs and float32 output layers left out)."""
    import keras

    return {layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)
            if not layer.name.startswith(FLOAT32_LAYERS) and not isinstance(layer, keras.layers.InputLayer)}


def with_precision(model, precision="auto"):
    """``model`` computing at ``precision`` (:func:`resolve_precision`): the model itself when it
    already does (e.g. loaded so by :func:`load_at_precision`), else a rebuilt copy with the same
    weights under Keras' ``mixed_bfloat16`` or ``float32`` policy."""
    precision = runnable_precision(precision)
    return model if computes_at(model) <= {_policy(precision)} else rebuilt(model, precision)


def rebuilt(model, precision):
    """A new copy of ``model`` (same weights, no optimizer state) under ``precision``'s policy."""
    config = model.get_config()
    if not _set_policies(config, _policy(precision)) and precision != "float32":
        raise ValueError(f"{model.name}: no layer with a dtype policy found to run in {precision}")
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def load_at_precision(model_file, precision="auto"):
    """Load a nuclei-tf ``.keras`` file built once, at ``precision``: its config's policies set
    before the layers are made (loading at float32 and then :func:`with_precision` built the
    model twice, 0.45 s more at start-up), and its weights read from a copy on disk (h5py reads
    them there in 0.12 s, through the zip's stream in 0.3-0.6 s)."""
    import keras

    import nuclei_tf.models  # noqa: F401  (registers the custom layers)

    precision = runnable_precision(precision)
    with zipfile.ZipFile(model_file) as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    _set_policies(config, _policy(precision))
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "model.weights.h5"
        copy.write_bytes(weights)
        model.load_weights(copy)
    return model
