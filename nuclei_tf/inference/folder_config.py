"""Checking a model folder's ``config.json`` when it is loaded: every setting is stated, is one the
inference code implements and has a valid value, and no key is unknown at any level the inference
reads; else one error names the file, the key, the value and what is allowed (an unknown stain
must never be run as Macenko, a misspelt key never leave its setting to a default, nor a bad
tile size fail deep inside Keras).

The file is versioned by ``format`` (:data:`FORMAT`; none = 1). Format 1 files that state every
setting (all that ``calibrate`` wrote) read as they are; :func:`upgrade_config` writes out, for
the others, what format-1 readers used for each key they lacked. Format 3 states the smallest
nucleus kept in um^2 (``postprocess.min_area_um2``) for a model of known resolution; formats 1-2
(and a model without ``mpp``) state it in pixels at the model's resolution (``min_size``), read as
the same area (:func:`pixel_postprocess`). Format 4 adds ``postprocess.marker_opening`` (the hv
head's marker clean-up); older files mean 0, no clean-up (:data:`POSTPROCESS_SINCE`). Format 5
adds ``postprocess.nms_threshold`` (the rays head's polygon suppression); older files hold no rays
model and mean StarDist's 0.4.
"""
import difflib
import json
import math
from dataclasses import fields

from nuclei_tf.data.errors import DataError
from nuclei_tf.inference.precision import INFERENCE_PRECISIONS
from nuclei_tf.models.heads import MARKER_HEADS, model_head
from nuclei_tf.postprocess import PostProcess
from nuclei_tf.postprocess.instances import SPLITS
from nuclei_tf.postprocess.watershed import CROP_MARGIN

#: input normalisations ``predict`` applies per tile (nuclei_tf.inference.predict.stain_function):
#: Macenko's stain normalisation, or StarDist's per-image percentiles (``percentile``)
INFERENCE_STAINS = ("none", "macenko", "macenko:classic", "macenko:staintools", "percentile")
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
    "min_area_um2": (lambda v: _number(v) and v >= 0, "a number >= 0 (um^2)"),
    "fill": (lambda v: isinstance(v, bool), "true or false"),
    "split": (lambda v: v in SPLITS, f"one of {', '.join(SPLITS)}"),
    "h": (lambda v: _number(v) and v > 0, "a number > 0"),
    "marker_threshold": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "require_marker": (lambda v: isinstance(v, bool), "true or false"),
    "min_marker_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "marker_opening": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= CROP_MARGIN,
                       f"an integer in 0..{CROP_MARGIN} (px)"),
    "nms_threshold": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
}


#: the ``format`` of the config.json files this version writes; a file without the key is format 1
FORMAT = 5
#: provenance records (where the model came from, how it was calibrated): kept, never read by inference
PROVENANCE = ("arch", "protocol", "seed", "trained_with", "calibration", "description")
#: the settings every config.json states beside ``postprocess`` (:class:`~nuclei_tf.inference.bundle.ModelBundle`'s
#: fields, in this order), and the ``postprocess`` keys (:class:`~nuclei_tf.postprocess.PostProcess`' fields)
SETTINGS = ("stain", "stain_max_gain", "clahe_tv", "tile", "overlap", "blend", "mpp", "margin", "tta", "precision")
POSTPROCESS_SETTINGS = tuple(f.name for f in fields(PostProcess))
#: ``postprocess`` keys that files state from a later format on; an older file lacks them and means
#: what its readers did, their value then (format 4: ``marker_opening``, HoVer-Net's marker clean-up,
#: 0 = none; format 5: ``nms_threshold``, the rays head's polygon suppression)
POSTPROCESS_SINCE = {"marker_opening": (4, 0), "nms_threshold": (5, 0.4)}
#: format 3: the smallest nucleus kept, in um^2, where a model of known resolution states ``min_size`` (px)
MIN_AREA = "min_area_um2"
#: pixels of rounding slack when an area in um^2 is turned back into whole pixels (a written area
#: is rounded to 1e-6 um^2, under 1e-3 px at any mpp >= 0.05)
PIXEL_SLACK = 1e-3

#: format 1 -> 2: what a format-1 reader used for a key the file did not state (the defaults of the
#: last format-1 release, written out here so that later changes to the defaults cannot move them);
#: applied only by ``nuclei-tf upgrade-model``, which prints every key it fills
FORMAT1_DEFAULTS = {"stain": "none", "stain_max_gain": None, "clahe_tv": False, "tile": 256, "overlap": 0.5,
                    "blend": "smooth", "mpp": None, "margin": 0, "tta": False, "precision": "auto"}
FORMAT1_POSTPROCESS = {"threshold": 0.5, "min_size": 10, "fill": True, "split": "none", "h": 1.0,
                       "marker_threshold": 0.5, "require_marker": False, "min_marker_size": 1,
                       **{key: value for key, (_, value) in POSTPROCESS_SINCE.items()}}
#: a three-class model's split when a format-1 file did not state one
FORMAT1_THREE_CLASS_SPLIT = "markers"


def read_json_object(path):
    """The JSON object in ``path``; one DataError for bad JSON or another type."""
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise DataError(path, f"must hold a JSON object, got {type(config).__name__}")
    return config


def config_format(config, path):
    """The ``format`` of a config.json (1 when it has none), refused when this version cannot read it."""
    version = config.get("format", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT
        raise DataError(path, f"'format' = {json.dumps(version)} is not valid; this nuclei-tf reads formats 1-{FORMAT}"
                              + ("; the folder was written by a newer nuclei-tf: upgrade it" if newer else ""))
    return version


def postprocess_keys(version, mpp):
    """The ``postprocess`` keys a config.json of format ``version`` for a model at ``mpp`` states:
    from format 3, ``min_area_um2`` in place of ``min_size`` where the resolution is known; the keys
    of :data:`POSTPROCESS_SINCE` from their format on."""
    keys = tuple(key for key in POSTPROCESS_SETTINGS if POSTPROCESS_SINCE.get(key, (1,))[0] <= version)
    if version >= 3 and mpp is not None:
        return tuple(MIN_AREA if key == "min_size" else key for key in keys)
    return keys


def pixels_of_area(area_um2, mpp):
    """The smallest nucleus in whole pixels at ``mpp`` um/px for one of ``area_um2``: the fewest
    pixels whose area is at least that (3 um^2 at 0.25 um/px: 48 px)."""
    return int(math.ceil(area_um2 / mpp**2 - PIXEL_SLACK))


def area_of_pixels(pixels, mpp):
    """``pixels`` at ``mpp`` um/px in um^2, rounded to 1e-6 (:data:`PIXEL_SLACK`)."""
    return round(pixels * mpp**2, 6)


def pixel_postprocess(post, mpp):
    """The ``postprocess`` dict with the smallest nucleus in pixels (``min_size``, what the
    post-processing uses), from a file's ``min_area_um2`` or ``min_size``."""
    post = dict(post)
    if MIN_AREA in post:
        post["min_size"] = pixels_of_area(post.pop(MIN_AREA), mpp)
    return post


def folder_postprocess(post, mpp):
    """The ``postprocess`` dict as formats 3 and 4 write it: the smallest nucleus in um^2 when ``mpp`` is known."""
    if mpp is None:
        return dict(post)
    return {MIN_AREA if k == "min_size" else k: area_of_pixels(v, mpp) if k == "min_size" else v for k, v in post.items()}


def check_config(config, path):
    """Refuse an unknown key at any level inference reads, and a bad value of any stated setting;
    returns the format."""
    version = config_format(config, path)
    _refuse_unknown(config, (*SETTINGS, "postprocess", "format", *PROVENANCE), path, "")
    _check(config, CHECKS, path, "")
    post = config.get("postprocess", {})
    if not isinstance(post, dict):
        raise DataError(path, "'postprocess' must be an object")
    if MIN_AREA in post and config.get("mpp") is None:
        raise DataError(path, f"'postprocess.{MIN_AREA}' needs the model's resolution ('mpp'); a model of unknown "
                              "resolution states 'postprocess.min_size' in pixels")
    _refuse_unknown(post, postprocess_keys(version, config.get("mpp")), path, "postprocess.")
    _check(post, POSTPROCESS_CHECKS, path, "postprocess.")
    return version


def read_folder_config(path):
    """The checked dict in ``path`` (a model folder's config.json): :func:`check_config`, and every
    setting stated (nothing is left to a default)."""
    config = read_json_object(path)
    version = check_config(config, path)
    post = config.get("postprocess")
    missing = [k for k in SETTINGS if k not in config]
    keys = postprocess_keys(version, config.get("mpp"))
    missing += ["postprocess"] if post is None else [f"postprocess.{k}" for k in keys if k not in post]
    if missing:
        hint = (f"; a format-1 file may predate some: `nuclei-tf upgrade-model {path.parent}` writes out what "
                "they meant then (README, Model folders)") if version == 1 else ""
        raise DataError(path, f"missing key(s) {', '.join(missing)}: every setting must be stated{hint}")
    return config


def upgrade_config(config, markers):
    """``(current-format config, [(key, value filled in or converted), ...])`` of a checked-readable
    older dict: each key a format-1 file lacks gets the value format-1 readers used
    (:data:`FORMAT1_DEFAULTS`), and ``min_size`` (px) becomes ``min_area_um2`` where ``mpp`` is known."""
    filled = [(k, v) for k, v in FORMAT1_DEFAULTS.items() if k not in config]
    defaults = {**FORMAT1_POSTPROCESS, **({"split": FORMAT1_THREE_CLASS_SPLIT} if markers else {})}
    settings = {k: config.get(k, FORMAT1_DEFAULTS.get(k)) for k in SETTINGS}
    stated = config.get("postprocess", {})
    post = pixel_postprocess(stated, settings["mpp"])  # a format-3 file's um^2 is its min_size
    filled += [(f"postprocess.{k}", v) for k, v in defaults.items() if k not in post]
    post = folder_postprocess({k: post.get(k, defaults[k]) for k in POSTPROCESS_SETTINGS}, settings["mpp"])
    if MIN_AREA in post and MIN_AREA not in stated:
        filled.append((f"postprocess.{MIN_AREA}", post[MIN_AREA]))
    upgraded = {"format": FORMAT, **settings, "postprocess": post, **{k: v for k, v in config.items() if k in PROVENANCE}}
    return upgraded, filled


def _refuse_unknown(config, known, path, prefix):
    unknown = sorted(set(config) - set(known))
    if unknown:
        guesses = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
        named = ", ".join(f"'{prefix}{k}'" + (f" (did you mean '{guesses[k][0]}'?)" if guesses[k] else "") for k in unknown)
        raise DataError(path, f"unknown key(s) {named}; valid: {', '.join(known)}")


def model_postprocess(model, post, path):
    """The :class:`PostProcess` of ``model`` from the checked ``post`` dict: split "markers" by
    default for a three-class or hv model and refused for the others; split "polygons" for a rays
    model, and for no other."""
    head = model_head(model)
    markers, rays = head in MARKER_HEADS, head == "rays"
    settings = PostProcess.from_dict({"split": "markers", **post} if markers else post)
    if settings.split == "markers" and not markers:
        raise DataError(path, "'postprocess.split' = \"markers\" needs a three-class or hv model (head three_class or hv)")
    if (settings.split == "polygons") != rays:
        raise DataError(path, f"'postprocess.split' = {json.dumps(settings.split)} does not fit a {head} model: "
                              "split \"polygons\" is for rays models, and theirs")
    return settings


def _check(config, checks, path, prefix):
    for key, (test, allowed) in checks.items():
        if key in config and not test(config[key]):
            raise DataError(path, f"'{prefix}{key}' = {json.dumps(config[key])} is not valid; expected {allowed}")
