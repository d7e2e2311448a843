"""2018 Data Science Bowl stage-1 layout (Caicedo et al. 2019), as used by Long 2020.

One stage folder (``stage1_train/`` or ``stage1_test/`` of the Kaggle download)::

    STAGE/<id>/images/<id>.png
    STAGE/<id>/masks/<mask>.png      one binary mask per nucleus (label_format "mask-folder")

and, beside or inside it, the same labels as one run-length CSV row per nucleus
(label_format "dsb-rle", :mod:`nuclei_tf.data.rle`): ``stage1_train_labels.csv`` for
``stage1_train/``, ``stage1_solution.csv`` for ``stage1_test/``. ``labels="auto"`` uses
the masks when every entry has a non-empty ``masks/`` folder, else the CSV;
``"masks"``/``"csv"`` force one.

Long 2020 kept only the grey-scale images (R = G = B): :meth:`DSB2018.records` with
``greyscale_only=True`` does the same.
"""
from pathlib import Path

import numpy as np

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import list_images, read_image
from nuclei_tf.data.record import Record
from nuclei_tf.data.rle import read_csv

LABEL_SOURCES = ("auto", "masks", "csv")

#: stage folder name -> its CSV in the Kaggle download.
STAGE_CSVS = {"stage1_train": "stage1_train_labels.csv", "stage1_test": "stage1_solution.csv"}


def is_greyscale(image):
    """True when every pixel has R = G = B."""
    return bool(np.all(image[..., 0] == image[..., 1]) and np.all(image[..., 1] == image[..., 2]))


def is_stage_folder(root):
    """True when ``root`` holds ``<id>/images/`` entries (one DSB stage folder)."""
    root = Path(root)
    return root.is_dir() and any((p / "images").is_dir() for p in root.iterdir())


def find_csv(root):
    """The run-length CSV of stage folder ``root``: beside it or inside it, by the stage's name.

    A folder with another name only looks inside itself, for either CSV name.
    """
    root = Path(root)
    if root.name in STAGE_CSVS:
        candidates = [root.parent / STAGE_CSVS[root.name], root / STAGE_CSVS[root.name]]
    else:
        candidates = [root / name for name in STAGE_CSVS.values()]
    return next((path for path in candidates if path.is_file()), None)


def _has_masks(entry):
    masks = entry / "masks"
    return masks.is_dir() and any(masks.iterdir())


class DSB2018:
    """A DSB-2018 stage-1 folder (training or test) with its labels from masks or the CSV."""

    name = "dsb2018"

    def __init__(self, root, labels="auto"):
        if labels not in LABEL_SOURCES:
            raise ValueError(f"labels must be one of {', '.join(LABEL_SOURCES)}, got {labels!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "DSB-2018 folder not found")
        self.entries = sorted(p for p in self.root.iterdir() if (p / "images").is_dir())
        if not self.entries:
            raise DataError(self.root, "not a DSB-2018 stage-1 folder: no '<id>/images/' inside")
        self.csv_path = self._choose_labels(labels)

    def _choose_labels(self, labels):
        """None for the masks/ folders, else the CSV path (checked: every ImageId has a folder)."""
        if labels == "masks":
            bare = next((e for e in self.entries if not (e / "masks").is_dir()), None)
            if bare is not None:
                raise DataError(bare, "has no 'masks/' folder (labels='masks')")
            return None
        unmasked = next((e for e in self.entries if not _has_masks(e)), None)
        if labels == "auto" and unmasked is None:
            return None
        path = find_csv(self.root)
        if path is None:
            names = STAGE_CSVS.get(self.root.name, " or ".join(STAGE_CSVS.values()))
            reason = "labels='csv'" if labels == "csv" else f"entry {unmasked.name} has no mask"
            raise DataError(self.root, f"no {names} beside or inside the folder ({reason})")
        table = read_csv(path)
        ids = {entry.name for entry in self.entries}
        for image_id, rows in table.rows.items():
            if image_id not in ids:
                raise table.error(rows[0].line, f"ImageId {image_id} has no image folder in {self.root}")
        return path

    def records(self, greyscale_only=False):
        """One Record per entry (id = the image id); ``greyscale_only`` reads every image to keep R = G = B ones."""
        records = []
        for entry in self.entries:
            images = list_images(entry / "images")
            if not images:
                raise DataError(entry / "images", "holds no image")
            if self.csv_path is None:
                labels, label_format = entry / "masks", "mask-folder"
            else:
                labels, label_format = self.csv_path, "dsb-rle"
            record = Record(entry.name, self.name, "unknown", entry.name, images[0], labels, label_format)
            if greyscale_only and not is_greyscale(read_image(record.image_path)):
                continue
            records.append(record)
        return records
