"""A generic folder of images and instance maps matched by file stem.

::

    ROOT/images/<stem>.(png|tif|jpg...)
    ROOT/labels/<stem>.(png|tif)        int instance map, 0 = background

For users' own data and other public sets (CPM-15/17, CryoNuSeg, ...) once exported
to that layout. ``organ``/``patient`` default to "unknown" / the stem; a
``metadata.csv`` (columns ``id,organ,patient``) in ROOT overrides them.
"""
import csv
from pathlib import Path

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import find_by_stem, list_images
from nuclei_tf.data.record import Record


class InstanceFolder:
    """``images/`` + ``labels/`` matched by stem; ``name`` becomes the records' dataset."""

    def __init__(self, root, name=None):
        self.root = Path(root)
        for sub in ("images", "labels"):
            if not (self.root / sub).is_dir():
                raise DataError(self.root, f"expected an '{sub}/' sub-folder")
        self.name = name or self.root.name
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
                       image_path, label, "instance-image")
            )
        return records
