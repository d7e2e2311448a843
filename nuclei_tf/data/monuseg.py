"""MoNuSeg 2018 (Kumar et al. 2017/2020) in its official download layout.

::

    ROOT/MoNuSeg 2018 Training Data/Tissue Images/<id>.tif
    ROOT/MoNuSeg 2018 Training Data/Annotations/<id>.xml
    ROOT/MoNuSegTestData/<id>.tif  +  <id>.xml
    ROOT/derived-instance-labels/<id>.png   (optional: used where an XML is absent)

Ground truth is the XML rasterised by :mod:`nuclei_tf.data.monuseg_xml`; an image
without XML falls back to an instance-label image in ``label_dirs``.
"""
from pathlib import Path

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import find_by_stem, list_images
from nuclei_tf.data.record import Record

TRAIN_IMAGES = Path("MoNuSeg 2018 Training Data") / "Tissue Images"
TRAIN_XML = Path("MoNuSeg 2018 Training Data") / "Annotations"
TEST_DIR = Path("MoNuSegTestData")
DERIVED_LABELS = Path("derived-instance-labels")

#: Organ of each MoNuSeg 2018 image, keyed by TCGA patient barcode (Kumar et al. 2020, Table 1).
ORGANS = {
    # training data
    "TCGA-A7-A13E": "breast", "TCGA-A7-A13F": "breast", "TCGA-AR-A1AK": "breast",
    "TCGA-AR-A1AS": "breast", "TCGA-E2-A1B5": "breast", "TCGA-E2-A14V": "breast",
    "TCGA-B0-5698": "kidney", "TCGA-B0-5710": "kidney", "TCGA-B0-5711": "kidney",
    "TCGA-HE-7128": "kidney", "TCGA-HE-7129": "kidney", "TCGA-HE-7130": "kidney",
    "TCGA-18-5592": "liver", "TCGA-21-5784": "liver", "TCGA-21-5786": "liver",
    "TCGA-38-6178": "liver", "TCGA-49-4488": "liver", "TCGA-50-5931": "liver",
    "TCGA-CH-5767": "prostate", "TCGA-G9-6336": "prostate", "TCGA-G9-6348": "prostate",
    "TCGA-G9-6356": "prostate", "TCGA-G9-6362": "prostate", "TCGA-G9-6363": "prostate",
    "TCGA-DK-A2I6": "bladder", "TCGA-G2-A2EK": "bladder",
    "TCGA-AY-A8YK": "colon", "TCGA-NH-A8F7": "colon",
    "TCGA-KB-A93J": "stomach", "TCGA-RD-A8N9": "stomach",
    # test data
    "TCGA-AC-A2FO": "breast", "TCGA-AO-A0J2": "breast",
    "TCGA-2Z-A9J9": "kidney", "TCGA-GL-6846": "kidney",
    "TCGA-44-2665": "lung", "TCGA-69-7764": "lung",
    "TCGA-EJ-A46H": "prostate", "TCGA-HC-7209": "prostate",
    "TCGA-CU-A0YN": "bladder", "TCGA-ZF-A9R5": "bladder",
    "TCGA-A6-6782": "colon", "TCGA-IZ-8196": "colon",
    "TCGA-FG-A4MU": "brain", "TCGA-HT-8564": "brain",
}


def patient_of(image_id):
    """The TCGA patient barcode (first three fields) of a MoNuSeg image id."""
    return "-".join(image_id.split("-")[:3])


class MoNuSeg:
    """The MoNuSeg training and test folders under ``root``.

    ``label_dirs``: folders searched (in order) for ``<id>.png``/``.tif`` instance labels
    when an image has no XML; defaults to ``ROOT/derived-instance-labels``.
    """

    name = "monuseg"

    def __init__(self, root, label_dirs=None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "MoNuSeg folder not found")
        if not (self.root / TRAIN_IMAGES).is_dir() and not (self.root / TEST_DIR).is_dir():
            raise DataError(
                self.root, f"not a MoNuSeg folder: neither '{TRAIN_IMAGES}' nor '{TEST_DIR}' is inside"
            )
        self.label_dirs = [Path(d) for d in label_dirs] if label_dirs else [self.root / DERIVED_LABELS]

    def _records(self, image_dir, xml_dir):
        if not image_dir.is_dir():
            return []
        return [self._record(path, xml_dir) for path in list_images(image_dir)]

    def _record(self, image_path, xml_dir):
        image_id = image_path.stem
        xml = xml_dir / f"{image_id}.xml"
        if xml.is_file():
            label_path, label_format = xml, "monuseg-xml"
        else:
            label_path = next(
                (p for d in self.label_dirs if (p := find_by_stem(d, image_id)) is not None), None
            )
            label_format = "instance-image"
        patient = patient_of(image_id)
        return Record(image_id, self.name, ORGANS.get(patient, "unknown"), patient, image_path, label_path, label_format)

    def train(self):
        """Records of the 30-image training folder."""
        return self._records(self.root / TRAIN_IMAGES, self.root / TRAIN_XML)

    def test(self):
        """Records of the 14-image test folder."""
        return self._records(self.root / TEST_DIR, self.root / TEST_DIR)

    def records(self):
        return self.train() + self.test()
