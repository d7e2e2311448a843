"""Turning additive counts into scores, with one convention for empty images.

Every score is a ratio of counts that add up over images. When a denominator is zero the
score is 1.0 if both the ground truth and the prediction are empty (nothing was missed and
nothing was invented) and 0.0 otherwise (an image where one side is empty is a failure).
"""

from .overlap import OverlapTable


def both_empty(counts):
    """True when ``counts`` describe no ground-truth and no predicted object."""
    return counts["n_gt"] == 0 and counts["n_pred"] == 0


def safe_ratio(numerator, denominator, counts):
    """``numerator / denominator`` as a float, with the module's convention when the denominator is 0."""
    if denominator == 0:
        return float(both_empty(counts))
    return float(numerator / denominator)


def score_labels(count_fn, score_fn, gt, pred, name=None):
    """Scores ``score_fn(count_fn(table))`` of the overlap table of two label maps."""
    return score_fn(count_fn(OverlapTable.from_labels(gt, pred, name=name)))
