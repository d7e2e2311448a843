"""Choosing a model's post-processing on the validation split only (never on a test set):
every threshold x splitting mode is scored with the chosen metric (Lagree et al. 2021 chose
the threshold maximising precision at an IoU threshold; AJI is the default here)."""
from dataclasses import replace

from tqdm import tqdm

from nuclei_tf.inference.predict import predict_probability
from nuclei_tf.postprocess import search_threshold
from nuclei_tf.postprocess.search import DEFAULT_THRESHOLDS

SPLIT_MODES = ("none", "watershed")


def calibrate(bundle, records, metric="aji", thresholds=DEFAULT_THRESHOLDS, split_modes=SPLIT_MODES, progress=True):
    """The best :class:`PostProcess` on ``records`` and ``{(split, threshold): score}``."""
    samples = [record.load() for record in tqdm(records, desc="load", disable=not progress, leave=False)]
    probabilities = [predict_probability(bundle, s.image) for s in tqdm(samples, desc="predict", disable=not progress, leave=False)]
    truths = [s.instances for s in samples]
    table, best, best_score = {}, None, -1.0
    for mode in split_modes:
        settings, scores = search_threshold(probabilities, truths, metric, thresholds, replace(bundle.postprocess, split=mode), how="mean")
        table.update({(mode, t): v for t, v in scores.items()})
        if scores[settings.threshold] > best_score:
            best, best_score = settings, scores[settings.threshold]
    return best, table
