"""2018 Data Science Bowl stage-1 layout (Caicedo et al. 2019), as used by Long 2020.

::

    ROOT/<id>/images/<id>.png
    ROOT/<id>/masks/<mask>.png    one binary mask per nucleus

Long 2020 kept only the grey-scale images (R = G = B): :meth:`DSB2018.records` with
``greyscale_only=True`` does the same (546 of the 670 stage-1 training images).
"""
from pathlib import Path

import numpy as np

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import list_images, read_image
from nuclei_tf.data.record import Record


def is_greyscale(image):
    """True when every pixel has R = G = B."""
    return bool(np.all(image[..., 0] == image[..., 1]) and np.all(image[..., 1] == image[..., 2]))


class DSB2018:
    """A DSB-2018 stage-1 folder (training, or test with masks)."""

    name = "dsb2018"

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "DSB-2018 folder not found")
        self.entries = sorted(p for p in self.root.iterdir() if (p / "images").is_dir())
        if not self.entries:
            raise DataError(self.root, "not a DSB-2018 stage-1 folder: no '<id>/images/' inside")

    def records(self, greyscale_only=False):
        records = []
        for entry in self.entries:
            images = list_images(entry / "images")
            if not images:
                raise DataError(entry / "images", "holds no image")
            record = Record(entry.name, self.name, "unknown", entry.name, images[0], entry / "masks", "mask-folder")
            if greyscale_only and not is_greyscale(read_image(record.image_path)):
                continue
            records.append(record)
        return records
