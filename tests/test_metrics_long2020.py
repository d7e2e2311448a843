"""Tests of nuclei_tf.metrics.long2020: hand-computed cases of each reading, empty images,
mean +- std summary, agreement with Eq. 3 ``map`` and with the per-cell loop in metrics_reference.py."""

import numpy as np
import pytest

from metrics_reference import random_pair, reference_long2020
from nuclei_tf.metrics import connected_regions, evaluate_instances, long2020_scores, long2020_summary

PUBLIC = ["long_avg_iou", "long_avg_iou_gt_only", "long_avg_iou_all_t", "long_precision",
          "n_gt", "n_pred", "n_fp_zero_overlap"]
BOTH = pytest.mark.parametrize("cells", ["components", "instances"])


def assert_scores(result, expected):
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, rel=0, abs=1e-9), key


def strips(bounds, shape=(12, 30)):
    """Label map of vertical strips over rows 1..10: ``bounds`` maps id -> (first col, stop col)."""
    labels = np.zeros(shape, np.int32)
    for label, (start, stop) in bounds.items():
        labels[1:11, start:stop] = label
    return labels


# G1 (100 px) and G2 (100 px); P1 lies inside G1 with IoU 60/100; P2 overlaps nothing;
# P3 overlaps G1 on 20 px (IoU 20/110), so it is an FP of Eq. 3 but not a zero-overlap FP.
GT = strips({1: (1, 11), 2: (13, 23)})
P1, P2, P3 = {1: (1, 7)}, {2: (25, 28)}, {3: (9, 12)}


@BOTH
@pytest.mark.parametrize("pred, expected", [
    # G1 is a TP at T = 0.50 and 0.55 only (0.6 is not > 0.6); G2 is an FN.
    # Average IOU: (0.6 + 0) over G1, G2 and P2; P3 is left out. Eq. 3: TP 1, FN 1, FP 2 at two T_k.
    ({**P1, **P2, **P3}, {"long_avg_iou": 0.6 / 3, "long_avg_iou_gt_only": 0.6 / 2,
                          "long_avg_iou_all_t": 2 * (0.6 / 3) / 10, "long_precision": 2 * (1 / 4) / 10,
                          "n_gt": 2, "n_pred": 3, "n_fp_zero_overlap": 1}),
    # Without the partly overlapping P3 only Eq. 3 changes (FP 1).
    ({**P1, **P2}, {"long_avg_iou": 0.6 / 3, "long_avg_iou_gt_only": 0.6 / 2,
                    "long_avg_iou_all_t": 2 * (0.6 / 3) / 10, "long_precision": 2 * (1 / 3) / 10,
                    "n_gt": 2, "n_pred": 2, "n_fp_zero_overlap": 1}),
    # Without the zero-overlap P2 the primary average runs over G1 and G2 only.
    ({**P1, **P3}, {"long_avg_iou": 0.6 / 2, "long_avg_iou_gt_only": 0.6 / 2,
                    "long_avg_iou_all_t": 2 * (0.6 / 2) / 10, "long_precision": 2 * (1 / 3) / 10,
                    "n_gt": 2, "n_pred": 2, "n_fp_zero_overlap": 0}),
])
def test_tp_fn_and_both_kinds_of_fp(cells, pred, expected):
    assert_scores(long2020_scores(GT, strips(pred), cells=cells), expected)


@pytest.mark.parametrize("stop, iou", [(6, 0.0), (7, 0.6)])
def test_iou_exactly_half_is_not_a_match(stop, iou):
    # One 100 px nucleus; the prediction covers its first 50 px (IoU 0.5) or 60 px (IoU 0.6).
    result = long2020_scores(strips({1: (1, 11)}), strips({4: (1, stop)}))
    assert_scores(result, {"long_avg_iou": iou, "long_avg_iou_gt_only": iou, "long_precision": 0.2 * (iou > 0),
                           "n_fp_zero_overlap": 0})


def test_touching_nuclei_merge_into_one_cell():
    # Two touching 100 px nuclei, one prediction covering both (IoU 0.5 with each).
    gt, pred = strips({1: (1, 11), 2: (11, 21)}), strips({7: (1, 21)})
    components = long2020_scores(gt, pred)
    instances = long2020_scores(gt, pred, cells="instances")
    # One ground-truth region, predicted exactly.
    assert_scores(components, {**{key: 1.0 for key in PUBLIC[:4]}, "n_gt": 1, "n_pred": 1, "n_fp_zero_overlap": 0})
    # Two nuclei at IoU 0.5 = two FNs; the prediction overlaps them, so only Eq. 3 counts it as an FP.
    assert_scores(instances, {**{key: 0.0 for key in PUBLIC[:4]}, "n_gt": 2, "n_pred": 1, "n_fp_zero_overlap": 0})


def test_touching_predicted_instances_merge():
    # One 200 px nucleus split by the prediction into touching instances of 120 and 80 px.
    gt, pred = strips({4: (1, 21)}), strips({2: (1, 13), 3: (13, 21)})
    assert_scores(long2020_scores(gt, pred), {key: 1.0 for key in PUBLIC[:4]})
    assert_scores(long2020_scores(gt, pred, cells="instances"), {
        "long_avg_iou": 0.6, "long_avg_iou_gt_only": 0.6, "long_avg_iou_all_t": 0.12,
        "long_precision": 2 * (1 / 2) / 10, "n_gt": 1, "n_pred": 2, "n_fp_zero_overlap": 0,
    })


def test_connected_regions():
    labels = np.zeros((5, 6), np.int64)
    labels[0, 0] = labels[1, 1] = 9  # diagonal neighbours
    labels[3, 2:4], labels[3, 4:6] = 5, 2  # touching instances
    regions = connected_regions(labels)
    assert regions.dtype == np.int32
    assert regions[0, 0] == regions[1, 1] != regions[3, 2]
    assert len(np.unique(regions[3, 2:6])) == 1 and np.unique(regions).tolist() == [0, 1, 2]
    assert np.unique(connected_regions(labels, connectivity=1)).tolist() == [0, 1, 2, 3]


EMPTY = np.zeros((12, 30), np.int32)
ONE = strips({3: (2, 6)})


@BOTH
@pytest.mark.parametrize("gt, pred, expected", [(EMPTY, EMPTY, 1.0), (EMPTY, ONE, 0.0), (ONE, EMPTY, 0.0)])
def test_empty_images(cells, gt, pred, expected):
    assert_scores(long2020_scores(gt, pred, cells=cells), {key: expected for key in PUBLIC[:4]})


@BOTH
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(cells, seed):
    gt, pred = random_pair(np.random.default_rng(seed), (256, 256), 60)
    result = long2020_scores(gt, pred, cells=cells)
    assert list(result)[: len(PUBLIC)] == PUBLIC
    assert_scores(result, reference_long2020(gt, pred, cells))


@pytest.mark.parametrize("seed, shape, n", [(0, (256, 256), 60), (3, (1000, 1000), 700)])
def test_precision_of_instances_is_map(seed, shape, n):
    gt, pred = random_pair(np.random.default_rng(seed), shape, n, radius=(6.0, 16.0))
    result = long2020_scores(gt, pred, cells="instances")
    assert result["long_precision"] == evaluate_instances(gt, pred)["map"]
    components = long2020_scores(gt, pred)
    assert components["n_gt"] < result["n_gt"] and components["n_pred"] < result["n_pred"]


def test_summary():
    rows = [{**long2020_scores(GT, strips({**P1, **P2, **P3})), "name": "a"},
            {**long2020_scores(ONE, ONE), "name": "b"}]
    summary = long2020_summary(rows)
    assert set(summary) == {f"{key}_{stat}" for key in PUBLIC for stat in ("mean", "std")} | {"n_images"}
    # Population std: 0.2 and 1.0 give 0.4 (the sample std would be 0.566).
    assert_scores(summary, {"long_avg_iou_mean": 0.6, "long_avg_iou_std": 0.4, "n_gt_mean": 1.5, "n_gt_std": 0.5,
                            "n_images": 2})
    with pytest.raises(ValueError):
        long2020_summary([])


def test_bad_input():
    with pytest.raises(ValueError, match="cells must be one of"):
        long2020_scores(ONE, ONE, cells="nuclei")
    with pytest.raises(ValueError, match="^TCGA-X: prediction must hold integer labels"):
        long2020_scores(ONE, ONE.astype(float), name="TCGA-X")
