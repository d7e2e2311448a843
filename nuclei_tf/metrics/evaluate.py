"""All metrics of one image from a single overlap table."""

from .instance import (
    aji_counts,
    aji_plus_counts,
    aji_plus_scores,
    aji_scores,
    ap_scores,
    cell_iou_counts,
    cell_iou_scores,
    detection_counts,
    dice2_counts,
    dice2_scores,
    pq_counts,
    pq_scores,
    prf_scores,
)
from .overlap import OverlapTable
from .pixel import pixel_counts, pixel_scores

COUNTERS = (aji_counts, aji_plus_counts, pq_counts, detection_counts, dice2_counts, cell_iou_counts, pixel_counts)
SCORERS = (aji_scores, aji_plus_scores, pq_scores, ap_scores, prf_scores, dice2_scores, cell_iou_scores, pixel_scores)


def table_counts(table):
    """Every additive count the metrics need: ``n_gt``, ``n_pred`` and the ``_``-prefixed raw sums."""
    counts = {}
    for count in COUNTERS:
        counts.update(count(table))
    return counts


def scores_from_counts(counts):
    """Every score computed from counts of one image or summed over several."""
    scores = {}
    for score in SCORERS:
        scores.update(score(counts))
    return scores


def evaluate_table(table):
    """Scores of an ``OverlapTable`` followed by the counts behind them (see ``evaluate_instances``)."""
    counts = table_counts(table)
    return {**scores_from_counts(counts), **counts}


def evaluate_instances(gt, pred, *, name=None):
    """All metrics of a predicted instance map against the ground truth, from one overlap table.

    ``gt`` and ``pred`` are 2-D integer label maps of one shape (0 = background, any positive
    ids); ``name`` (the image id) prefixes ``ValueError`` messages about bad input. Returns a
    flat dict of floats: ``aji``, ``aji_plus``, ``pq``, ``dq``, ``sq``, ``map``, ``ap@0.50`` ...
    ``ap@0.95``, ``precision@0.5``, ``recall@0.5``, ``f1@0.5`` (and ``@0.7``), ``dice2``,
    ``mean_cell_iou``, ``dice`` (DICE1) and ``pixel_jaccard/dice/precision/recall/accuracy``;
    then the object counts ``n_gt`` and ``n_pred`` and the raw counts behind the scores under
    ``_``-prefixed keys, which add up over images (see ``aggregate``).

    A zero denominator gives 1.0 when both maps are empty and 0.0 otherwise (``scoring``).
    """
    return evaluate_table(OverlapTable.from_labels(gt, pred, name=name))
