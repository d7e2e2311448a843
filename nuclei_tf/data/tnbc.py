"""TNBC (Naylor et al. 2018): 50 breast H&E tiles from 11 patients, official layout.

::

    ROOT/Slide_XX/XX_k.png   (RGBA or RGB, 512 x 512)
    ROOT/GT_XX/XX_k.png      (binary 0/255 mask)

``ROOT`` may also be the folder holding ``TNBC_NucleiSegmentation/`` (the Zenodo zip).
Instances are the 4-connected components of the mask (4,056 in the 50 masks).
"""
from pathlib import Path

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import find_by_stem, list_images
from nuclei_tf.data.record import Record

ZIP_FOLDER = "TNBC_NucleiSegmentation"


class TNBC:
    """The TNBC slides under ``root``; one patient per ``Slide_XX`` folder."""

    name = "tnbc"

    def __init__(self, root):
        root = Path(root)
        if (root / ZIP_FOLDER).is_dir():
            root = root / ZIP_FOLDER
        if not root.is_dir():
            raise DataError(root, "TNBC folder not found")
        self.root = root
        self.slides = sorted(p for p in root.glob("Slide_*") if p.is_dir())
        if not self.slides:
            raise DataError(root, "not a TNBC folder: no 'Slide_XX' sub-folder inside")

    def records(self):
        records = []
        for slide in self.slides:
            patient = slide.name.split("_", 1)[1]
            gt_dir = self.root / f"GT_{patient}"
            for image_path in list_images(slide):
                records.append(
                    Record(
                        f"tnbc-{image_path.stem}",
                        self.name,
                        "breast",
                        patient,
                        image_path,
                        find_by_stem(gt_dir, image_path.stem),
                        "binary-components",
                    )
                )
        return records
