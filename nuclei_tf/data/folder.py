"""A generic folder of images and label maps matched by file stem: your own annotations.

::

    ROOT/images/<stem>.(png|tif|jpg...)
    ROOT/labels/<stem>.(png|tif)        int instance map, 0 = background (or binary masks, below)
    ROOT/val/images, ROOT/val/labels    optional: the validation images (else a fraction of ROOT's)
    ROOT/test/images, ROOT/test/labels  optional: a test set ("test")
    ROOT/dataset.json                   optional: {"mpp": 0.25, "labels": "instances", "val_fraction": 0.2}
    ROOT/metadata.csv                   optional: columns id,organ,patient

For users' own data (``nuclei-tf import-annotations`` writes it from QuPath) and other public sets
(CPM-15/17, CryoNuSeg, ...) once exported to that layout. ``organ``/``patient`` default to
"unknown" / the stem. Labels are read as instance maps (``labels: instances``), or, with
``labels: binary``, as binary masks whose 4-connected foreground components become the nuclei
(touching nuclei then merge into one: instance maps are better training data).
"""
import csv
import json
from pathlib import Path

import numpy as np

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import find_by_stem, image_shape, list_images, read_label
from nuclei_tf.data.record import Record

#: ``labels`` -> the Record label format that reads them
LABEL_FORMATS = {"instances": "instance-image", "binary": "binary-components"}
DATASET_FILE = "dataset.json"
#: what a folder's description holds when neither dataset.json nor the command line states it
#: (``mpp`` None: unknown, refused where a resolution is needed)
DATASET_DEFAULTS = {"labels": "instances", "val_fraction": 0.2, "mpp": None}


class InstanceFolder:
    """``images/`` + ``labels/`` matched by stem; ``name`` becomes the records' dataset."""

    def __init__(self, root, name=None, labels="instances"):
        self.root = Path(root)
        for sub in ("images", "labels"):
            if not (self.root / sub).is_dir():
                raise DataError(self.root, f"expected an '{sub}/' sub-folder")
        if labels not in LABEL_FORMATS:
            raise DataError(self.root, f"labels {labels!r} is not one of {', '.join(LABEL_FORMATS)}")
        self.name = name or self.root.name
        self.label_format = LABEL_FORMATS[labels]
        self.metadata = self._read_metadata(self.root / "metadata.csv")

    @staticmethod
    def _read_metadata(path):
        if not path.is_file():
            return {}
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "id" not in rows[0]:
            raise DataError(path, "metadata.csv needs an 'id' column")
        return {row["id"]: row for row in rows}

    def records(self):
        records = []
        for image_path in list_images(self.root / "images"):
            stem = image_path.stem
            label = find_by_stem(self.root / "labels", stem)
            if label is None:
                raise DataError(image_path, f"no label image named '{stem}.*' in {self.root / 'labels'}")
            meta = self.metadata.get(stem, {})
            records.append(
                Record(stem, self.name, meta.get("organ", "unknown"), meta.get("patient", stem),
                       image_path, label, self.label_format)
            )
        return records


def describe_folder(root, **given):
    """The description of the folder ``root``: :data:`DATASET_DEFAULTS`, then ROOT/dataset.json, then
    ``given`` (command-line values; None = not given), checked; with ``root`` itself."""
    root = Path(root)
    described = dict(DATASET_DEFAULTS)
    path = root / DATASET_FILE
    if path.is_file():
        try:
            stated = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(path, f"is not valid JSON ({exc})") from None
        if not isinstance(stated, dict) or set(stated) - set(DATASET_DEFAULTS):
            raise DataError(path, f"must be an object with keys among {', '.join(DATASET_DEFAULTS)}")
        described.update(stated)
    described.update({k: v for k, v in given.items() if v is not None})
    return check_description({"root": str(root), **described}, path)


def check_description(described, where):
    """Refuse an unknown labels mode, a validation fraction outside (0, 1) or an implausible mpp."""
    if described.get("labels") not in LABEL_FORMATS:
        raise DataError(where, f"labels = {described.get('labels')!r} is not one of {', '.join(LABEL_FORMATS)}")
    fraction = described.get("val_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise DataError(where, f"val_fraction = {fraction!r} is not a number in (0, 1)")
    mpp = described.get("mpp")
    if mpp is not None and (isinstance(mpp, bool) or not isinstance(mpp, (int, float)) or not 0.05 <= mpp <= 20):
        raise DataError(where, f"mpp = {mpp!r} is not a microscope resolution (0.05-20 um/px)")
    unknown = set(described) - {"root", *DATASET_DEFAULTS}
    if unknown:
        raise DataError(where, f"unknown key(s) {', '.join(sorted(unknown))}; valid: root, {', '.join(DATASET_DEFAULTS)}")
    return described


def check_pairs(records):
    """Read every label map of ``records`` before any training, so that a bad pair stops the run at
    once with one line naming the file: a label of another size than its image, non-integer or
    negative ids (:func:`~nuclei_tf.data.io.read_label`), or a binary mask given as an instance map."""
    for record in records:
        label = read_label(record.label_path)
        height, width = image_shape(record.image_path)
        if label.shape != (height, width):
            raise DataError(record.label_path, f"is {label.shape[1]} x {label.shape[0]} px but its image "
                                               f"{Path(record.image_path).name} is {width} x {height} px")
        if record.label_format == LABEL_FORMATS["instances"] and looks_binary(label):
            raise DataError(record.label_path, "holds one id for several separate nuclei (a binary mask?): give instance "
                                               "maps (one id per nucleus) or pass --labels binary (4-connected components "
                                               "become the nuclei; touching ones merge)")


def looks_binary(label):
    """Whether an 'instance map' is a binary mask: its only id is 255, or id 1 covers several
    8-connected regions."""
    from scipy import ndimage

    ids = np.unique(label)
    if ids.tolist() == [0, 255] or ids.tolist() == [255]:
        return True
    if ids.tolist() in ([0, 1], [1]):
        return ndimage.label(label == 1, structure=np.ones((3, 3)))[1] > 1
    return False
