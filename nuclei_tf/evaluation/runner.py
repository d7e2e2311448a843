"""Evaluate a predictor on the test sets of a protocol, image by image."""
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from nuclei_tf.metrics import aggregate, evaluate_instances, long2020_scores


def long2020_extra(gt, pred, name=None):
    """Long 2020's average IOU and precision in both cell readings: ``long_*`` (connected
    regions, the paper's) and ``long_*_instances`` (the official nuclei)."""
    row = {}
    for cells, suffix in (("components", ""), ("instances", "_instances")):
        scores = long2020_scores(gt, pred, cells=cells, name=name)
        row.update({f"{key}{suffix}": value for key, value in scores.items() if key.startswith("long_")})
    return row


#: protocol -> extra per-image scores beside ``evaluate_instances``
EXTRA_SCORES = {"long2020": long2020_extra}


def evaluate_splits(splits, predictor, save_dir=None, progress=True, extra_scores=None):
    """Score ``predictor`` on every record of ``splits`` ({name: [Record]}).

    Returns ``(rows, summaries)``: one dict per image (split, id, organ, patient and every
    metric of :func:`nuclei_tf.metrics.evaluate_instances`, then ``extra_scores(gt, pred,
    name)`` if given), and per split the ``{"mean": ..., "pooled": ...}`` aggregates (extra
    scores are averaged into ``mean``). With ``save_dir``, each prediction is also written to
    ``save_dir/<split>/<id>.tif`` (int32).
    """
    rows, summaries = [], {}
    for split, records in splits.items():
        results = []
        for record in tqdm(records, desc=split, disable=not progress, leave=False):
            sample = record.load()
            prediction = np.asarray(predictor(split, record, sample))
            result = evaluate_instances(sample.instances, prediction, name=record.id)
            if extra_scores is not None:
                result.update(extra_scores(sample.instances, prediction, name=record.id))
            if save_dir is not None:
                target = Path(save_dir) / split
                target.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(target / f"{record.id}.tif", prediction.astype(np.int32), compression="zlib")
            results.append(result)
            rows.append({"split": split, "id": record.id, "organ": record.organ, "patient": record.patient, **result})
        if results:
            summaries[split] = {"mean": aggregate(results, "mean"), "pooled": aggregate(results, "pooled")}
    return rows, summaries
