"""Instance-segmentation metrics for nucleus label maps (numpy/scipy only).

``evaluate_instances(gt, pred)`` gives every metric of one image from one ``OverlapTable``;
``aggregate`` summarises many images by mean or by pooled counts. The single-metric
functions take two label maps; ``*_counts``/``*_scores`` pairs in ``instance`` and ``pixel``
let callers reuse one table for several metrics. ``long2020_scores`` gives the average IOU and
precision of Long 2020 (U-Net+) in each reading of the paper; ``long2020_summary`` their mean +- std.
"""

from .aggregate import aggregate
from .evaluate import evaluate_instances, evaluate_table, scores_from_counts, table_counts
from .instance import (
    AP_THRESHOLDS,
    PRF_THRESHOLDS,
    aji,
    aji_plus,
    average_precision,
    dice2,
    mean_cell_iou,
    panoptic_quality,
    precision_recall_f1,
)
from .long2020 import connected_regions, long2020_scores, long2020_summary
from .matching import best_match_per_gt, optimal_pairs, pairs_above
from .overlap import OverlapTable
from .pixel import pixel_metrics
from .validation import check_label_maps

__all__ = [
    "AP_THRESHOLDS",
    "PRF_THRESHOLDS",
    "OverlapTable",
    "aggregate",
    "aji",
    "aji_plus",
    "average_precision",
    "best_match_per_gt",
    "check_label_maps",
    "connected_regions",
    "dice2",
    "evaluate_instances",
    "evaluate_table",
    "long2020_scores",
    "long2020_summary",
    "mean_cell_iou",
    "optimal_pairs",
    "pairs_above",
    "panoptic_quality",
    "pixel_metrics",
    "precision_recall_f1",
    "scores_from_counts",
    "table_counts",
]
