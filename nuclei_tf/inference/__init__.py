"""Applying a trained model to images of any size: model folders, tiled prediction, outputs."""
from nuclei_tf.inference.bundle import ModelBundle, load_bundle, save_bundle
from nuclei_tf.inference.predict import predict_probability, segment

__all__ = ["ModelBundle", "load_bundle", "predict_probability", "save_bundle", "segment"]
