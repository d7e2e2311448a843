"""Sources of predicted instance maps: ``predictor(split, record, sample) -> int32 H x W``."""
from pathlib import Path

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import find_by_stem, read_label


def folder_predictor(folder):
    """Read ``<folder>/<split>/<id>.*`` (or ``<folder>/<id>.*``) instance maps written by any tool."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "predictions folder not found")

    def predict(split, record, sample):
        path = find_by_stem(folder / split, record.id) or find_by_stem(folder, record.id)
        if path is None:
            raise DataError(folder, f"no prediction for image {record.id} (expected {split}/{record.id}.tif or .png)")
        return read_label(path)

    return predict


def baseline_predictor(method):
    """Run one of the classical baselines (:data:`nuclei_tf.baselines.BASELINES`) on the image."""
    from nuclei_tf.baselines import BASELINES

    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(BASELINES)}")
    segment = BASELINES[method]

    def predict(split, record, sample):
        return segment(sample.image)

    return predict


def model_predictor(bundle):
    """Segment the image with a model bundle (its tiling and post-processing)."""
    from nuclei_tf.inference import segment

    def predict(split, record, sample):
        return segment(bundle, sample.image)[1]

    return predict
