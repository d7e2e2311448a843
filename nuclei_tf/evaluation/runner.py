"""Evaluate a predictor on the test sets of a protocol, image by image."""
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from nuclei_tf.metrics import aggregate, evaluate_instances


def evaluate_splits(splits, predictor, save_dir=None, progress=True):
    """Score ``predictor`` on every record of ``splits`` ({name: [Record]}).

    Returns ``(rows, summaries)``: one dict per image (split, id, organ, patient and every
    metric of :func:`nuclei_tf.metrics.evaluate_instances`), and per split the
    ``{"mean": ..., "pooled": ...}`` aggregates. With ``save_dir``, each prediction is also
    written to ``save_dir/<split>/<id>.tif`` (int32).
    """
    rows, summaries = [], {}
    for split, records in splits.items():
        results = []
        for record in tqdm(records, desc=split, disable=not progress, leave=False):
            sample = record.load()
            prediction = np.asarray(predictor(split, record, sample))
            result = evaluate_instances(sample.instances, prediction, name=record.id)
            if save_dir is not None:
                target = Path(save_dir) / split
                target.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(target / f"{record.id}.tif", prediction.astype(np.int32), compression="zlib")
            results.append(result)
            rows.append({"split": split, "id": record.id, "organ": record.organ, "patient": record.patient, **result})
        if results:
            summaries[split] = {"mean": aggregate(results, "mean"), "pooled": aggregate(results, "pooled")}
    return rows, summaries
