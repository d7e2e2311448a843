"""Tests of nuclei_tf.metrics: hand-computed cases, empty images, id invariance, bad input,
aggregation and agreement with the slow reference in metrics_reference.py."""

import numpy as np
import pytest

from metrics_reference import random_pair, reference_metrics
from nuclei_tf.metrics import (
    OverlapTable,
    aggregate,
    aji,
    aji_plus,
    average_precision,
    dice2,
    evaluate_instances,
    mean_cell_iou,
    panoptic_quality,
    pairs_above,
    pixel_metrics,
    precision_recall_f1,
)
from nuclei_tf.metrics import overlap

AP_KEYS = [f"ap@{t:.2f}" for t in np.arange(50, 100, 5) / 100]
SCORE_KEYS = [
    "aji", "aji_plus", "pq", "dq", "sq", "map", *AP_KEYS,
    "precision@0.5", "recall@0.5", "f1@0.5", "precision@0.7", "recall@0.7", "f1@0.7",
    "dice", "dice2", "pixel_jaccard", "pixel_dice", "pixel_precision", "pixel_recall",
    "pixel_accuracy", "mean_cell_iou",
]


def assert_scores(result, expected):
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=0, abs=1e-9), key


def disk(shape, centre, radius):
    y, x = np.indices(shape)
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def test_result_has_every_key():
    gt, pred = random_pair(np.random.default_rng(5), (64, 64), 8)
    result = evaluate_instances(gt, pred)
    assert set(SCORE_KEYS) | {"n_gt", "n_pred"} <= set(result)
    assert [k for k in result if k.startswith("ap@")] == AP_KEYS


def test_shifted_disks():
    shape = (64, 64)
    g, s = disk(shape, (30, 30), 10), disk(shape, (30, 34), 10)
    a, b, i = g.sum(), s.sum(), (g & s).sum()
    iou = i / (a + b - i)
    assert 0.5 < iou < 0.7
    gt, pred = g * 7, s * 3
    ap = {key: float(iou > t) for key, t in zip(AP_KEYS, np.arange(50, 100, 5) / 100)}
    assert_scores(evaluate_instances(gt, pred), {
        "aji": iou, "aji_plus": iou, "pq": iou, "dq": 1, "sq": iou, "mean_cell_iou": iou,
        **ap, "map": np.mean(list(ap.values())),
        "precision@0.5": 1, "recall@0.5": 1, "f1@0.5": 1, "precision@0.7": 0, "recall@0.7": 0, "f1@0.7": 0,
        "dice": 2 * i / (a + b), "dice2": 2 * i / (a + b), "pixel_dice": 2 * i / (a + b),
        "pixel_jaccard": iou, "pixel_precision": i / b, "pixel_recall": i / a,
        "pixel_accuracy": (g.size - a - b + 2 * i) / g.size, "n_gt": 1, "n_pred": 1,
    })


def strips(shape, bounds):
    """Label map of vertical strips over rows 1..10: ``bounds`` maps id -> (first col, stop col)."""
    labels = np.zeros(shape, np.int32)
    for label, (start, stop) in bounds.items():
        labels[1:11, start:stop] = label
    return labels


def test_prediction_covering_two_nuclei():
    # G1 = 100 px, G2 = 100 px; S1 covers G1 and 70 px of G2, S2 the other 30 px of G2.
    gt = strips((12, 24), {1: (1, 11), 2: (11, 21)})
    pred = strips((12, 24), {5: (1, 18), 9: (18, 21)})
    iou_11, iou_21, iou_22 = 100 / 170, 70 / 200, 30 / 100
    result = evaluate_instances(gt, pred)
    # AJI pairs both G1 and G2 with S1 (0.35 > 0.30), counting S1 twice and S2 as unmatched.
    # AJI+ pairs G1-S1 and G2-S2 (total IoU 0.888 > 0.35).
    assert_scores(result, {
        "aji": (100 + 70) / (170 + 200 + 30), "aji_plus": (100 + 30) / (170 + 100),
        "dq": 0.5, "sq": iou_11, "pq": 0.5 * iou_11,
        "ap@0.50": 1 / 3, "ap@0.55": 1 / 3, "ap@0.60": 0, "map": 2 / 30,
        "precision@0.5": 0.5, "recall@0.5": 0.5, "f1@0.5": 0.5, "f1@0.7": 0,
        "dice2": 2 * (100 + 70 + 30) / (270 + 270 + 130), "mean_cell_iou": (iou_11 + iou_21) / 2,
        "dice": 1, "pixel_jaccard": 1, "pixel_accuracy": 1,
    })
    assert result["aji"] < result["aji_plus"]
    assert iou_21 > iou_22


def test_split_nucleus():
    gt = strips((12, 24), {4: (1, 21)})
    pred = strips((12, 24), {2: (1, 13), 3: (13, 21)})
    assert_scores(evaluate_instances(gt, pred), {
        "aji": 120 / 280, "aji_plus": 120 / 280, "dq": 2 / 3, "sq": 0.6, "pq": 0.4,
        "precision@0.5": 0.5, "recall@0.5": 1, "f1@0.5": 2 / 3, "recall@0.7": 0,
        "ap@0.55": 0.5, "ap@0.60": 0, "map": 0.1,
        "dice2": 2 * 200 / (320 + 280), "mean_cell_iou": 0.6, "dice": 1,
    })


def test_disjoint_objects_score_zero():
    gt = strips((12, 24), {1: (1, 5)})
    pred = strips((12, 24), {1: (10, 15)})
    result = evaluate_instances(gt, pred)
    assert_scores(result, {key: 0 for key in SCORE_KEYS if key != "pixel_accuracy"})


EMPTY = np.zeros((16, 16), np.int32)
ONE = strips((16, 16), {3: (2, 6)})


@pytest.mark.parametrize("gt, pred, expected", [
    (EMPTY, EMPTY, 1.0),  # nothing to find and nothing invented: perfect
    (EMPTY, ONE, 0.0),  # only false positives
    (ONE, EMPTY, 0.0),  # only misses
])
def test_empty_images(gt, pred, expected):
    result = evaluate_instances(gt, pred)
    accuracy = 1 - np.count_nonzero(gt + pred) / gt.size
    assert_scores(result, {**{key: expected for key in SCORE_KEYS}, "pixel_accuracy": accuracy})
    assert (result["n_gt"], result["n_pred"]) == (np.count_nonzero(np.unique(gt)), np.count_nonzero(np.unique(pred)))


def relabel(labels, rng, ids):
    """``labels`` with its non-zero ids replaced by distinct random picks from ``ids``."""
    old = np.unique(labels)
    new = np.r_[0, rng.choice(ids, len(old) - 1, replace=False)]
    return new[np.searchsorted(old, labels)]


@pytest.mark.parametrize("ids, dtype", [
    (np.arange(1, 2**16, dtype=np.uint16), np.uint16),
    (np.arange(1, 300, dtype=np.uint16), np.uint16),
    (2**40 + np.arange(10**6) * 7919, np.int64),  # beyond the bincount lookup: np.unique path
])
def test_ids_do_not_matter(ids, dtype):
    rng = np.random.default_rng(1)
    gt, pred = random_pair(rng, (128, 128), 25)
    base = evaluate_instances(gt, pred)
    moved = evaluate_instances(relabel(gt, rng, ids).astype(dtype), relabel(pred, rng, ids).astype(dtype))
    assert_scores(moved, {key: base[key] for key in base})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(seed):
    gt, pred = random_pair(np.random.default_rng(seed), (256, 256), 60)
    assert_scores(evaluate_instances(gt, pred), reference_metrics(gt, pred))


def test_matches_reference_large():
    gt, pred = random_pair(np.random.default_rng(3), (1000, 1000), 200, radius=(6.0, 16.0))
    assert_scores(evaluate_instances(gt, pred), reference_metrics(gt, pred))


def test_sparse_tally_matches_dense(monkeypatch):
    gt, pred = random_pair(np.random.default_rng(4), (256, 256), 60)
    dense = evaluate_instances(gt, pred)
    monkeypatch.setattr(overlap, "DENSE_LIMIT", 0)
    assert evaluate_instances(gt, pred) == dense


def test_thousands_of_objects():
    # 75 x 75 tiles of 3 x 3 pixels; the prediction is the tiling shifted by one column
    # (wrapping round), so every nucleus meets one prediction on 6 px (IoU 1/2) and one on 3 px (IoU 1/5).
    gt = np.arange(1, 75 * 75 + 1).reshape(75, 75).repeat(3, 0).repeat(3, 1)
    pred = np.roll(gt, 1, axis=1) + 10**7
    assert gt.max() ** 2 > overlap.DENSE_LIMIT
    result = evaluate_instances(gt, pred)
    assert (result["n_gt"], result["n_pred"]) == (5625, 5625)
    assert_scores(result, {
        "aji": 0.5, "aji_plus": 0.5, "mean_cell_iou": 0.5, "dice2": 0.5, "pq": 0, "map": 0, "dice": 1,
    })


def test_overlap_table():
    gt = strips((12, 24), {1: (1, 11), 2: (11, 21)})
    table = OverlapTable.from_labels(gt, strips((12, 24), {5: (1, 18), 9: (18, 21)}))
    assert table.gt_ids.tolist() == [1, 2] and table.pred_ids.tolist() == [5, 9]
    assert table.gt_area.tolist() == [100, 100] and table.pred_area.tolist() == [170, 30]
    assert table.pair_gt.tolist() == [0, 1, 1] and table.pair_pred.tolist() == [0, 0, 1]
    assert table.pair_inter.tolist() == [100, 70, 30] and table.pair_union.tolist() == [170, 200, 100]
    assert table.n_pixels == 12 * 24


def test_single_metric_functions_agree():
    gt, pred = random_pair(np.random.default_rng(6), (128, 128), 25)
    result = evaluate_instances(gt, pred)
    assert aji(gt, pred) == result["aji"]
    assert aji_plus(gt, pred) == result["aji_plus"]
    assert dice2(gt, pred) == result["dice2"]
    assert mean_cell_iou(gt, pred) == result["mean_cell_iou"]
    for scores in (panoptic_quality(gt, pred), average_precision(gt, pred), precision_recall_f1(gt, pred),
                   pixel_metrics(gt, pred)):
        assert scores == {key: result[key] for key in scores}
    custom = average_precision(gt, pred, thresholds=(0.5, 0.75))
    assert custom == {"map": (result["ap@0.50"] + result["ap@0.75"]) / 2,
                      "ap@0.50": result["ap@0.50"], "ap@0.75": result["ap@0.75"]}


def test_low_threshold_is_refused():
    with pytest.raises(ValueError, match="0.3"):
        pairs_above(OverlapTable.from_labels(ONE, ONE), 0.3)


@pytest.mark.parametrize("gt, pred, message", [
    (np.zeros((10, 10), int), np.zeros((10, 12), int),
     r"prediction shape \(10, 12\) != ground truth shape \(10, 10\)$"),
    (np.zeros((10, 10), int), np.zeros((10, 10)), "prediction must hold integer labels, got dtype float64"),
    (np.zeros((10, 10), bool), np.zeros((10, 10), int), "ground truth must hold integer labels, got dtype bool"),
    (np.full((10, 10), -1), np.zeros((10, 10), int), "ground truth holds negative labels"),
    (np.zeros((2, 10, 10), int), np.zeros((2, 10, 10), int),
     r"ground truth must be a 2-D label map, got shape \(2, 10, 10\)"),
    (np.zeros((0, 10), int), np.zeros((0, 10), int), "ground truth is empty"),
])
def test_bad_input(gt, pred, message):
    with pytest.raises(ValueError, match="^TCGA-X: " + message):
        evaluate_instances(gt, pred, name="TCGA-X")
    with pytest.raises(ValueError, match="^" + message):
        aji(gt, pred)


def test_pooled_equals_concatenated_image():
    rng = np.random.default_rng(7)
    (gt_a, pred_a), (gt_b, pred_b) = random_pair(rng, (96, 128), 20), random_pair(rng, (96, 128), 20)
    offset = 10**7
    joined = evaluate_instances(
        np.hstack([gt_a, np.where(gt_b > 0, gt_b + offset, 0)]),
        np.hstack([pred_a, np.where(pred_b > 0, pred_b + offset, 0)]),
    )
    per_image = [evaluate_instances(gt_a, pred_a), evaluate_instances(gt_b, pred_b)]
    pooled = aggregate(per_image, how="pooled")
    assert_scores(pooled, {key: joined[key] for key in joined})
    assert pooled["aji"] == pytest.approx(
        sum(r["_aji_inter"] for r in per_image) / sum(r["_aji_union"] for r in per_image))
    assert pooled["n_images"] == 2


def test_mean_aggregation():
    rng = np.random.default_rng(8)
    per_image = [{**evaluate_instances(*random_pair(rng, (64, 64), 8)), "name": f"img{k}"} for k in range(3)]
    mean = aggregate(per_image)
    assert_scores(mean, {key: np.mean([r[key] for r in per_image]) for key in SCORE_KEYS})
    assert mean["n_gt"] == sum(r["n_gt"] for r in per_image)
    assert "name" not in mean


@pytest.mark.parametrize("results, how", [([], "mean"), ([evaluate_instances(ONE, ONE)], "median")])
def test_aggregate_refuses(results, how):
    with pytest.raises(ValueError):
        aggregate(results, how=how)
