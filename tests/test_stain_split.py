"""The stain-shift validation split (lagree2021-stain)."""
import numpy as np
import pytest

from nuclei_tf.data.stain_split import farthest_stained


def test_the_farthest_stained_images_are_held_out_first():
    features = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [-3.0, 0.0], [0.05, 0.05]])
    assert farthest_stained(features, 2) == [3, 4]
    assert farthest_stained(features, 1) == [3]
    with pytest.raises(ValueError, match="cannot hold out 6 of 6 images"):
        farthest_stained(features, 6)


#: the 7 images ``lagree2021-stain`` holds out, as chosen with seed 0
STAIN_VALIDATION = ["TCGA-18-5592-01Z-00-DX1", "TCGA-21-5786-01Z-00-DX1", "TCGA-49-4488-01Z-00-DX1", "TCGA-B0-5698-01Z-00-DX1",
                    "TCGA-G9-6363-01Z-00-DX1", "TCGA-HT-8564-01Z-00-DX1", "TCGA-ZF-A9R5-01A-01-TS1"]


def test_lagree2021_stain_keeps_the_split_sizes_on_real_monuseg(monuseg_root, tnbc_root):
    from nuclei_tf.data.protocols import split_protocol

    splits = split_protocol("lagree2021-stain", monuseg=monuseg_root, tnbc=tnbc_root, seed=5)
    assert len(splits["train"]) == 29 and len(splits["val"]) == 7
    assert not {r.id for r in splits["train"]} & {r.id for r in splits["val"]}
    assert all(r.organ != "breast" for r in splits["train"] + splits["val"])
    assert sorted(r.id for r in splits["val"]) == STAIN_VALIDATION, "the same 7 whatever the seed (seed 0 chose these)"
