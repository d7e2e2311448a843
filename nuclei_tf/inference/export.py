"""TF Serving export: a SavedModel in the versioned layout ``DIR/<version>/`` whose
``serving_default`` signature takes uint8 images [batch, H, W, 3] of any size.

Inside the graph: scale to [0, 1], pad bottom/right with white (1.0, the slide background)
up to a multiple of 32, run the model, crop back to H x W. Output ``probabilities``
[batch, H, W, C] float32. Stain normalisation is not part of the graph: send images the
way the model was trained (see the model folder's config.json, ``stain``).
"""
import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from nuclei_tf.data.errors import DataError

MULTIPLE = 32


def serving_function(model):
    """The uint8 -> probabilities function exported as ``serving_default``."""

    def serve(images):
        x = tf.cast(images, tf.float32) / 255.0
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        pad_h, pad_w = (-height) % MULTIPLE, (-width) % MULTIPLE
        x = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], constant_values=1.0)
        probabilities = tf.cast(model(x, training=False), tf.float32)
        return {"probabilities": probabilities[:, :height, :width, :]}

    return serve


def export_saved_model(model, out_dir, version=None):
    """Write the SavedModel to ``out_dir/<version>`` (next free integer by default); returns the path."""
    if version is not None and version < 1:
        raise ValueError(f"--version must be >= 1 (TF Serving versions are positive integers), got {version}")
    out_dir = Path(out_dir)
    if version is None:
        existing = [int(p.name) for p in out_dir.glob("*") if p.name.isdigit()] if out_dir.is_dir() else []
        version = max(existing, default=0) + 1
    target = out_dir / str(version)
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose another --version")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=serving_function(model),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
    )
    # written beside the versions under a name TF Serving ignores (not an integer), then renamed:
    # an interrupted export never leaves a version folder without saved_model.pb
    partial = out_dir / f".{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        archive.write_out(str(partial), verbose=False)
        os.replace(partial, target)
    except tf.errors.OpError as exc:  # TensorFlow's file system raises its own types (permission, full disk)
        raise DataError(out_dir, f"cannot write the SavedModel: {exc.message}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
