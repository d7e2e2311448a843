"""Numeric precision policy: ``auto`` is mixed_float16 on a GPU and float32 on a CPU
(where float16 maths is emulated and measured ~6x slower here)."""
import keras
import tensorflow as tf

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def resolve_precision(precision="auto"):
    """The concrete Keras dtype policy name for ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"
    return precision


def set_precision(precision="auto"):
    """Set the global Keras dtype policy (before building a model); returns the policy name."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
