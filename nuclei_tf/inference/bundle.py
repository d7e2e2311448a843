"""A shipped model folder (stardist-style): ``model.keras`` + ``config.json``.

``config.json`` holds everything needed to use the model the way it was validated: the
resolution it was trained at (``mpp``, microns per pixel), the preprocessing (stain normalisation, or Long 2020's CLAHE + TV with ``clahe_tv``), the tiling (tile size, overlap, blend), the chosen
post-processing (threshold, watershed splitting...) and provenance (protocol, metrics).
A bare ``.keras`` file is also accepted, with default settings.
"""
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nuclei_tf.data.errors import DataError
from nuclei_tf.inference.folder_config import (FORMAT, SETTINGS, area_of_pixels, folder_postprocess, model_postprocess,
                                               pixel_postprocess, pixels_of_area, read_folder_config)
from nuclei_tf.inference.precision import load_at_precision, rebuilt, resolve_precision, runnable_precision, with_precision
from nuclei_tf.inference.shipped import resolve_model
from nuclei_tf.postprocess import PostProcess
from nuclei_tf.data.star_targets import RAY_CHANNELS, view_channels
from nuclei_tf.postprocess.markers import nucleus_outputs

@dataclass
class ModelBundle:
    """A loaded model with the settings it is meant to be used with."""

    model: keras.Model
    stain: str = "none"  #: input normalisation: "none", "macenko[:convention]" or "percentile" (StarDist's)
    #: None, or Macenko's (haematoxylin, eosin) gain caps (:class:`~nuclei_tf.preprocess.macenko.MacenkoNormalizer`)
    stain_max_gain: list = None
    clahe_tv: bool = False
    tile: int = 256
    overlap: float = 0.5
    blend: str = "smooth"
    mpp: float = None  #: microns per pixel of the training images (None: unknown, e.g. DSB 2018's mixed microscopes)
    margin: int = 0  #: > 0: tiles of ``tile`` px whose ``margin`` px border is discarded (``overlap`` and ``blend`` unused)
    tta: bool = False  #: test-time augmentation: the mean over the 8 flips and 90-degree rotations of each tile
    precision: str = "auto"  #: "auto", "float32" or "bfloat16" (:mod:`~nuclei_tf.inference.precision`)
    postprocess: PostProcess = field(default_factory=PostProcess)
    info: dict = field(default_factory=dict)

    _compiled: tuple = field(default=(None, None), init=False, repr=False, compare=False)
    #: how many times this bundle's model was traced into a graph (one per model and precision)
    traces: int = field(default=0, init=False, repr=False, compare=False)

    def probabilities(self, tiles):
        """Nucleus probability (N, t, t) of a batch of tiles (N, t, t, 3): uint8, or floats in [0, 1]
        (what CLAHE + TV gives); (N, t, t, 2) interior and nucleus probabilities for a three-class
        model, interior-ness and nucleus probability for an hv one, the 33 outputs of a rays one
        (:func:`~nuclei_tf.postprocess.markers.nucleus_outputs`; with TTA, each view's rays are
        renumbered back, :func:`~nuclei_tf.data.star_targets.view_channels`).

        Runs the model through a ``tf.function`` compiled once per model and precision for every
        batch size and tile shape (``[None, None, None, 3]``: measured as fast as a graph traced
        for one shape, where each new shape cost a 0.4-0.5 s trace): graph execution frees each
        activation as soon as it is consumed, where an eager call holds them all.
        """
        key, function = self._compiled
        if key is None or key[0] is not self.model or key[1] != self.precision:
            function = self._compile()
            self._compiled = ((self.model, self.precision), function)
        scale = 255.0 if tiles.dtype == np.uint8 else 1.0
        x = tiles.astype(np.float32) / scale
        if not self.tta:
            return nucleus_outputs(np.asarray(function(x), dtype=np.float32))
        total = 0.0
        for turns in range(4):  # the dihedral group of the square tile: 4 rotations x (no flip, flip)
            for flip in (False, True):
                view = np.rot90(x, turns, axes=(1, 2))
                view = view[:, :, ::-1] if flip else view
                probability = nucleus_outputs(np.asarray(function(np.ascontiguousarray(view)), dtype=np.float32))
                probability = np.rot90(probability[:, :, ::-1] if flip else probability, -turns, axes=(1, 2))
                if probability.ndim == 4 and probability.shape[-1] == RAY_CHANNELS:  # the view's rays point elsewhere
                    probability = probability[..., view_channels(turns, flip)]
                total += probability
        return total / 8.0

    def _compile(self):
        runner = with_precision(self.model, self.precision)

        def run(x):
            self.traces += 1  # a Python side effect: runs only while tracing
            return runner(x, training=False)

        height, width, channels = self.model.inputs[0].shape[1:]  # None where the model takes any size
        return tf.function(run, input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32)])

    @property
    def runs_at(self):
        """The precision the model computes at on this machine (``precision`` resolved)."""
        return resolve_precision(self.precision)

    @property
    def min_area_um2(self):
        """The smallest nucleus kept, in um^2 (None for a model of unknown resolution)."""
        return None if self.mpp is None else area_of_pixels(self.postprocess.min_size, self.mpp)

    def keep_nuclei_from(self, area_um2):
        """Keep only nuclei of at least ``area_um2`` (``--min-area``), whole pixels at the model's resolution."""
        if self.mpp is None:
            raise ValueError("this model records no training resolution ('mpp'), so a nucleus size in um^2 "
                             "cannot be turned into its pixels")
        if not area_um2 >= 0:
            raise ValueError(f"a smallest nucleus area is >= 0 um^2, got {area_um2}")
        self.postprocess = replace(self.postprocess, min_size=pixels_of_area(area_um2, self.mpp))

    def postprocess_summary(self):
        """The post-processing in words, the smallest nucleus in um^2 where the resolution is known."""
        post = self.postprocess
        opening = f", marker opening {post.marker_opening} px" if post.marker_opening else ""
        details = {"markers": f" (marker threshold {post.marker_threshold}{opening})",
                   "polygons": f" (suppressed beyond {post.nms_threshold} overlap)"}
        split = post.split + details.get(post.split, "")
        size = f"{post.min_size} px" if self.mpp is None else f"{self.min_area_um2:g} um^2 ({post.min_size} px)"
        return f"threshold {post.threshold}, split {split}, smallest nucleus {size}"

    def settings(self):
        """The model folder's config.json: the format, every setting, then the provenance (``info``)."""
        post = folder_postprocess(self.postprocess.to_dict(), self.mpp)
        return {"format": FORMAT, **{key: getattr(self, key) for key in SETTINGS}, "postprocess": post, **self.info}


def load_bundle(path=None, precision=None):
    """Load a model folder (``model.keras`` + ``config.json``), a bare ``.keras`` file or a
    shipped model by name (default: :data:`~nuclei_tf.inference.shipped.DEFAULT_MODEL_NAME`), its model built at ``precision``
    (default: the folder's ``precision``)."""
    path = resolve_model(path)
    if path.is_dir():
        model_file, config_file = path / "model.keras", path / "config.json"
    else:
        model_file, config_file = path, path.with_suffix(".json")
    if not model_file.is_file():
        raise FileNotFoundError(f"{model_file}: model file not found")
    if path.is_dir() and not config_file.is_file():
        raise DataError(config_file, "not found: a model folder states its settings there (pass the .keras file "
                                     "itself to run the model with the default settings)")
    config = read_folder_config(config_file) if config_file.is_file() else {}
    config["precision"] = precision or config.get("precision", "auto")
    runs_at = runnable_precision(config["precision"])
    try:
        model = load_at_precision(model_file, runs_at)
    except Exception as exc:  # Keras raises many types for a damaged or foreign file
        raise DataError(model_file, f"cannot be loaded as a nuclei-tf Keras model: corrupt, truncated or "
                                    f"from an incompatible version? ({type(exc).__name__}: {exc})") from None
    post = model_postprocess(model, pixel_postprocess(config.pop("postprocess", {}), config.get("mpp")), config_file)
    config.pop("format", None)  # read as it is (every setting stated) and written back as FORMAT
    known = {k: config.pop(k) for k in SETTINGS if k in config}
    return ModelBundle(model, postprocess=post, info=config, **known)


def save_bundle(bundle, folder):
    """Write ``model.keras`` (float32, without optimizer state) and ``config.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rebuilt(bundle.model, "float32").save(folder / "model.keras")  # float32 whatever it ran at; no optimizer state
    (folder / "config.json").write_text(json.dumps(bundle.settings(), indent=2) + "\n")
    return folder
