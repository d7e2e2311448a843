"""Checking a model folder's ``config.json`` when it is loaded: every setting is one the
inference code implements, else one error names the file, the key, the value and what is allowed
(an unknown stain must never be run as Macenko, nor a bad tile size fail deep inside Keras)."""
import json
import math
from dataclasses import fields

from nuclei_tf.data.errors import DataError
from nuclei_tf.inference.precision import INFERENCE_PRECISIONS
from nuclei_tf.models.heads import model_head
from nuclei_tf.postprocess import PostProcess
from nuclei_tf.postprocess.instances import SPLITS

#: stain normalisations ``predict`` applies per tile (nuclei_tf.inference.predict.stain_function)
INFERENCE_STAINS = ("none", "macenko", "macenko:classic", "macenko:staintools")
BLENDS = ("mean", "max", "smooth")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


#: key -> (test, what is allowed)
CHECKS = {
    "stain": (lambda v: v in INFERENCE_STAINS, f"one of {', '.join(INFERENCE_STAINS)}"),
    "stain_max_gain": (lambda v: v is None or (isinstance(v, list) and len(v) == 2 and all(_number(g) and g > 0 for g in v)),
                       "null or two numbers > 0 (haematoxylin, eosin)"),
    "clahe_tv": (lambda v: isinstance(v, bool), "true or false"),
    "tta": (lambda v: isinstance(v, bool), "true or false"),
    "precision": (lambda v: v in INFERENCE_PRECISIONS, f"one of {', '.join(INFERENCE_PRECISIONS)}"),
    "tile": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 16, "an integer >= 16"),
    "overlap": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "margin": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0 (px)"),
    "blend": (lambda v: v in BLENDS, f"one of {', '.join(BLENDS)}"),
    "mpp": (lambda v: v is None or (_number(v) and 0.05 <= v <= 20), "null or microns per pixel in 0.05-20"),
}
POSTPROCESS_CHECKS = {
    "threshold": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "min_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "fill": (lambda v: isinstance(v, bool), "true or false"),
    "split": (lambda v: v in SPLITS, f"one of {', '.join(SPLITS)}"),
    "h": (lambda v: _number(v) and v > 0, "a number > 0"),
    "marker_threshold": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "require_marker": (lambda v: isinstance(v, bool), "true or false"),
    "min_marker_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
}


def read_folder_config(path):
    """The dict in ``path`` (a model folder's config.json), checked; {} when there is none."""
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise DataError(path, f"must hold a JSON object, got {type(config).__name__}")
    _check(config, CHECKS, path, "")
    post = config.get("postprocess", {})
    if not isinstance(post, dict):
        raise DataError(path, "'postprocess' must be an object")
    unknown = sorted(set(post) - {f.name for f in fields(PostProcess)})
    if unknown:
        raise DataError(path, f"unknown postprocess key(s) {', '.join(unknown)}; valid: {', '.join(POSTPROCESS_CHECKS)}")
    _check(post, POSTPROCESS_CHECKS, path, "postprocess.")
    return config


def model_postprocess(model, post, path):
    """The :class:`PostProcess` of ``model`` from the checked ``post`` dict: split "markers" by
    default for a three-class model, and refused for a foreground one."""
    three_class = model_head(model) == "three_class"
    settings = PostProcess.from_dict({"split": "markers", **post} if three_class else post)
    if settings.split == "markers" and not three_class:
        raise DataError(path, "'postprocess.split' = \"markers\" needs a three-class model (head three_class)")
    return settings


def _check(config, checks, path, prefix):
    for key, (test, allowed) in checks.items():
        if key in config and not test(config[key]):
            raise DataError(path, f"'{prefix}{key}' = {json.dumps(config[key])} is not valid; expected {allowed}")
