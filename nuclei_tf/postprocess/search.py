"""Threshold choice on validation data (Lagree et al. 2021: the threshold that maximises
precision at a given IoU threshold; or any other metric, e.g. AJI), and more generally the
best of any list of post-processing settings (:func:`search_settings`)."""
from dataclasses import replace

import numpy as np

from nuclei_tf.metrics import aggregate, evaluate_instances
from nuclei_tf.postprocess.instances import PostProcess, probability_to_instances

DEFAULT_THRESHOLDS = tuple(np.round(np.arange(0.3, 0.91, 0.05), 2))


def metric_names(summary=None):
    """The names a validation metric can take (the keys of an aggregated evaluation)."""
    if summary is None:
        empty = np.zeros((4, 4), np.int32)
        summary = aggregate([evaluate_instances(empty, empty)])
    return [k for k in summary if not k.startswith("_")]


def check_metric(metric, summary=None):
    """``metric`` if it names a validation metric, else a ValueError listing them."""
    names = metric_names(summary)
    if metric not in names:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(names)}")
    return metric


def search_settings(probabilities, ground_truths, candidates, metric="aji", how="pooled"):
    """The :class:`PostProcess` of ``candidates`` that maximises ``metric`` over the images.

    ``probabilities`` and ``ground_truths`` are matching sequences of maps (H x W, or what
    :func:`~nuclei_tf.postprocess.instances.probability_to_instances` takes); ``how``
    aggregates per-image results ("pooled" or "mean", see :func:`nuclei_tf.metrics.aggregate`).
    Returns ``(best_settings, {settings: score})``; ties go to the earlier candidate.
    """
    return search_settings_for(probabilities, ground_truths, candidates, (metric,), how)[metric]


def search_settings_for(probabilities, ground_truths, candidates, metrics, how="pooled"):
    """:func:`search_settings` for each of ``metrics`` at once, every candidate evaluated once:
    ``{metric: (best_settings, {settings: score})}``."""
    if len(probabilities) != len(ground_truths) or not probabilities:
        raise ValueError("need the same, non-zero number of probability maps and ground truths")
    for metric in metrics:
        check_metric(metric)
    summaries = {}
    for candidate in candidates:
        results = [
            evaluate_instances(gt, probability_to_instances(p, candidate))
            for p, gt in zip(probabilities, ground_truths)
        ]
        summaries[candidate] = aggregate(results, how=how)
    chosen = {}
    for metric in metrics:
        scores = {candidate: float(summary[metric]) for candidate, summary in summaries.items()}
        chosen[metric] = max(scores, key=scores.get), scores
    return chosen


def search_threshold(probabilities, ground_truths, metric="aji", thresholds=DEFAULT_THRESHOLDS,
                     settings=PostProcess(), how="pooled"):
    """The :class:`PostProcess` whose threshold maximises ``metric`` over the images
    (:func:`search_settings`). Returns ``(best_settings, {threshold: score})``; ties go to the
    lower threshold.
    """
    candidates = [replace(settings, threshold=t) for t in sorted({float(t) for t in thresholds})]
    best, scores = search_settings(probabilities, ground_truths, candidates, metric, how)
    return best, {candidate.threshold: score for candidate, score in scores.items()}
