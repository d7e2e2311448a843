"""Choosing a model's post-processing on the validation split only (never on a test set):
every candidate setting is scored with the chosen metric (Lagree et al. 2021 chose the
threshold maximising precision at an IoU threshold; AJI is the default here). Foreground
models try every threshold x splitting mode; three-class models (Kumar et al. 2017) the
"markers" split on a grid of threshold x marker threshold x whether a nucleus needs a
marker; hv models (HoVer-Net) the same split on the NP threshold x the interior-ness threshold x
HoVer-Net's marker clean-up or none x whether a nucleus needs a marker; rays models (StarDist)
the "polygons" split on the object-probability threshold x the suppression overlap. Optionally each of these also tries several smallest nucleus sizes (``min_sizes``, px at
the model's resolution; ``calibrate --min-area`` gives them in um^2) and,
for three-class models, several smallest marker sizes (``min_marker_sizes``).

:func:`stain_gain_limit` takes the largest Macenko gains of the training images, the cap
past which a faintly stained image is not amplified (:mod:`nuclei_tf.preprocess.macenko`)."""
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from nuclei_tf.inference.folder_config import area_of_pixels
from nuclei_tf.inference.predict import as_source, predict_probability, stain_normalizer
from nuclei_tf.models.heads import MARKER_HEADS, model_head
from nuclei_tf.postprocess.instances import PostProcess
from nuclei_tf.postprocess.search import DEFAULT_THRESHOLDS, search_settings_for

SPLIT_MODES = ("none", "watershed")
#: the three-class grid: 5 x 5 x 2 = 50 settings (the best of the 30 first tried, 0.7 / 0.7, lay on
#: the edge of 0.3-0.7 x 0.3-0.8, so the grid moved up)
THREE_CLASS_THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)
MARKER_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
REQUIRE_MARKER = (False, True)
#: the hv grid: 3 x 5 x 2 x 2 = 60 settings. Interior-ness is about 0.5 + 1.4 / (2 r) inside a
#: nucleus of radius r px (ideal maps: 0.55 at r = 30, 0.60 at r = 15) and under 0.3 where two touch
HV_THRESHOLDS = (0.4, 0.5, 0.6)
HV_MARKER_THRESHOLDS = (0.45, 0.5, 0.52, 0.54, 0.56)
#: no clean-up, or HoVer-Net's opening (its 5 x 5 ellipse is a disk of radius 2)
HV_MARKER_OPENINGS = (0, 2)
#: the rays grid: 4 x 3 = 12 settings around StarDist's defaults (its threshold is chosen on
#: validation too; nms 0.4 is its default, 0.3 in its notebooks for crowded nuclei)
RAY_THRESHOLDS = (0.4, 0.5, 0.6, 0.7)
NMS_THRESHOLDS = (0.3, 0.4, 0.5)


def candidates(bundle, thresholds=DEFAULT_THRESHOLDS, split_modes=SPLIT_MODES, min_sizes=None, min_marker_sizes=None):
    """The settings calibration tries for ``bundle``'s model, from its current post-processing;
    ``min_sizes`` (px): each setting with each smallest nucleus size (default: the current one);
    ``min_marker_sizes`` (px, three-class and hv models only): the same for the smallest marker."""
    base = bundle.postprocess
    head = model_head(bundle.model)
    if min_marker_sizes and head not in MARKER_HEADS:
        raise ValueError("min_marker_sizes applies to three-class and hv models only (split 'markers')")
    if head in MARKER_HEADS:
        thresholds, markers, openings = ((THREE_CLASS_THRESHOLDS, MARKER_THRESHOLDS, (0,)) if head == "three_class"
                                         else (HV_THRESHOLDS, HV_MARKER_THRESHOLDS, HV_MARKER_OPENINGS))
        grid = [replace(base, split="markers", threshold=t, marker_threshold=m, require_marker=r, min_marker_size=int(k),
                        marker_opening=o)
                for k in (min_marker_sizes or (base.min_marker_size,))
                for t in thresholds for m in markers for o in openings for r in REQUIRE_MARKER]
    elif head == "rays":
        grid = [replace(base, split="polygons", threshold=t, nms_threshold=n) for t in RAY_THRESHOLDS for n in NMS_THRESHOLDS]
    else:
        grid = [replace(base, split=mode, threshold=float(t), require_marker=False) for mode in split_modes for t in thresholds]
    return [replace(settings, min_size=int(size)) for size in (min_sizes or (base.min_size,)) for settings in grid]


def setting_key(settings, mpp=None):
    """A setting's name in the calibration table: ``split@threshold`` (``markers@threshold@marker_threshold``,
    then ``>=min_marker_size`` when that is not 1 px, ``~open2`` for a marker opening of radius 2 px
    and ``+marker`` when a nucleus needs one; ``polygons@threshold~nms0.4``), then
    the smallest nucleus when that is not the default 10 px: ``/3um2`` at a known ``mpp``, else ``/48px``."""
    key = f"{settings.split}@{settings.threshold}"
    if settings.split == "markers":
        key += f"@{settings.marker_threshold}"
        key += f">={settings.min_marker_size}" if settings.min_marker_size != PostProcess.min_marker_size else ""
        key += f"~open{settings.marker_opening}" if settings.marker_opening else ""
        key += "+marker" if settings.require_marker else ""
    if settings.split == "polygons":
        key += f"~nms{settings.nms_threshold}"
    if settings.min_size == PostProcess.min_size:
        return key
    return key + (f"/{settings.min_size}px" if mpp is None else f"/{area_of_pixels(settings.min_size, mpp):g}um2")


def calibrate(bundle, records, metrics=("aji",), thresholds=DEFAULT_THRESHOLDS, split_modes=SPLIT_MODES, min_sizes=None,
              min_marker_sizes=None, progress=True):
    """For each of ``metrics``, the best :class:`PostProcess` on ``records`` and ``{setting_key: score}``
    of every candidate: ``{metric: (best, table)}`` (each candidate evaluated once for all metrics)."""
    samples = [record.load() for record in tqdm(records, desc="load", disable=not progress, leave=False)]
    probabilities = [predict_probability(bundle, s.image) for s in tqdm(samples, desc="predict", disable=not progress, leave=False)]
    truths = [s.instances for s in samples]
    grid = candidates(bundle, thresholds, split_modes, min_sizes, min_marker_sizes)
    chosen = search_settings_for(probabilities, truths, grid, metrics, how="mean")
    return {metric: (best, {setting_key(settings, bundle.mpp): score for settings, score in scores.items()})
            for metric, (best, scores) in chosen.items()}


def stain_gain_limit(bundle, records, progress=True):
    """Each stain's largest Macenko gain over ``records`` (the training images), computed as
    inference computes it, as a ``[haematoxylin, eosin]`` list for ``bundle.stain_max_gain``
    (rounded up to 4 decimals, so that no training image is capped)."""
    from nuclei_tf.preprocess.macenko import BackgroundError

    normaliser = stain_normalizer(bundle, capped=False)
    gains = []
    for record in tqdm(records, desc="stain gains", disable=not progress, leave=False):
        source = as_source(bundle, record.load_image())
        try:
            gains.append(normaliser.gain(normaliser.source_statistics(source.statistics_sample())[1]))
        except BackgroundError:
            continue  # no tissue: no gain to learn from
    if not gains:
        raise ValueError(f"none of the {len(records)} training images has tissue to measure stain gains on")
    return [float(g) for g in np.ceil(np.max(gains, axis=0) * 1e4) / 1e4]
