"""Applying a trained model to images of any size: model folders, tiled prediction, outputs.

The names below are imported on first use (PEP 562), so that the modules that need no model
(input lists, output tables, slide readers) load without TensorFlow."""
import importlib

#: public name -> the module of this package defining it
_EXPORTS = {"ModelBundle": "bundle", "load_bundle": "bundle", "save_bundle": "bundle",
            "predict_probability": "predict", "segment": "predict"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nuclei_tf.inference.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nuclei_tf.inference' has no attribute {name!r}")
