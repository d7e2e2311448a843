"""Choosing a model's post-processing on the validation split only (never on a test set):
every candidate setting is scored with the chosen metric (Lagree et al. 2021 chose the
threshold maximising precision at an IoU threshold; AJI is the default here). Foreground
models try every threshold x splitting mode; three-class models (Kumar et al. 2017) the
"markers" split on a small grid of threshold x marker threshold."""
from dataclasses import replace

from tqdm import tqdm

from nuclei_tf.inference.predict import predict_probability
from nuclei_tf.models.heads import model_head
from nuclei_tf.postprocess.search import DEFAULT_THRESHOLDS, search_settings

SPLIT_MODES = ("none", "watershed")
#: the three-class grid: 5 x 6 = 30 settings, about the 26 of a foreground model
THREE_CLASS_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
MARKER_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def candidates(bundle, thresholds=DEFAULT_THRESHOLDS, split_modes=SPLIT_MODES):
    """The settings calibration tries for ``bundle``'s model, from its current post-processing."""
    base = bundle.postprocess
    if model_head(bundle.model) == "three_class":
        return [replace(base, split="markers", threshold=t, marker_threshold=m)
                for t in THREE_CLASS_THRESHOLDS for m in MARKER_THRESHOLDS]
    return [replace(base, split=mode, threshold=float(t)) for mode in split_modes for t in thresholds]


def setting_key(settings):
    """A setting's name in the calibration table: ``split@threshold`` (``markers@threshold@marker_threshold``)."""
    if settings.split == "markers":
        return f"markers@{settings.threshold}@{settings.marker_threshold}"
    return f"{settings.split}@{settings.threshold}"


def calibrate(bundle, records, metric="aji", thresholds=DEFAULT_THRESHOLDS, split_modes=SPLIT_MODES, progress=True):
    """The best :class:`PostProcess` on ``records`` and ``{setting_key: score}`` of every candidate."""
    samples = [record.load() for record in tqdm(records, desc="load", disable=not progress, leave=False)]
    probabilities = [predict_probability(bundle, s.image) for s in tqdm(samples, desc="predict", disable=not progress, leave=False)]
    truths = [s.instances for s in samples]
    best, scores = search_settings(probabilities, truths, candidates(bundle, thresholds, split_modes), metric, how="mean")
    return best, {setting_key(settings): score for settings, score in scores.items()}
