"""Dataset-level summaries of per-image results of ``evaluate_instances``."""

from numbers import Real

import numpy as np

from .evaluate import scores_from_counts


def is_count(key):
    """True for the additive keys of a result: ``n_gt``, ``n_pred`` and the ``_``-prefixed raw counts."""
    return key.startswith("_") or key in ("n_gt", "n_pred")


def aggregate(results, how="mean"):
    """Summarise per-image result dicts of ``evaluate_instances``.

    ``how="mean"``: each score is the mean of the per-image scores. ``how="pooled"``: scores
    are recomputed from counts summed over images, e.g. AJI = sum C / sum U, AP and P/R/F1
    from summed TP/FP/FN, pixel scores from the summed confusion matrix. Either way the counts
    are summed and ``n_images`` is added; non-numeric entries (such as an image name) are ignored.
    """
    results = list(results)
    if not results:
        raise ValueError("no results to aggregate")
    first = results[0]
    counts = {key: sum(result[key] for result in results) for key in first if is_count(key)}
    if how == "pooled":
        scores = scores_from_counts(counts)
    elif how == "mean":
        keys = [key for key, value in first.items() if not is_count(key) and isinstance(value, Real)]
        scores = {key: float(np.mean([result[key] for result in results])) for key in keys}
    else:
        raise ValueError(f"how must be 'mean' or 'pooled', got {how!r}")
    return {**scores, **counts, "n_images": len(results)}
