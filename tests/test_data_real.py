"""The loaders and protocols on the real MoNuSeg 2018, TNBC and DSB 2018 downloads (skipped when absent)."""
import warnings

import numpy as np
import pytest

from nuclei_tf.data import DSB2018, MoNuSeg, TNBC, split_protocol
from nuclei_tf.data.io import image_shape
from nuclei_tf.data.monuseg_xml import parse_regions
from nuclei_tf.data.rle import read_csv


@pytest.fixture(scope="module")
def monuseg_samples(monuseg_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [(record, record.load()) for record in MoNuSeg(monuseg_root).records()]


def test_all_monuseg_images_load(monuseg_samples):
    assert len(monuseg_samples) == 44
    assert sum(r.label_format == "monuseg-xml" for r, _ in monuseg_samples) == 27
    for record, sample in monuseg_samples:
        assert sample.image.shape == (1000, 1000, 3) and sample.image.dtype == np.uint8
        assert sample.instances.dtype == np.int32
        ids = np.unique(sample.instances)
        assert ids[0] == 0 and np.array_equal(ids[1:], np.arange(1, len(ids))), record.id
        assert record.organ != "unknown", record.id


def test_monuseg_counts_match_xml_regions(monuseg_samples):
    for record, sample in monuseg_samples:
        if record.label_format == "monuseg-xml":
            n_regions = len(parse_regions(record.label_path))
            assert abs(sample.n_nuclei - n_regions) <= 0.02 * n_regions, record.id


def test_tnbc_has_50_images_and_4056_nuclei(tnbc_root):
    records = TNBC(tnbc_root).records()
    assert len(records) == 50 and len({r.patient for r in records}) == 11
    total = 0
    for record in records:
        sample = record.load()
        assert sample.image.shape == (512, 512, 3)
        total += sample.n_nuclei
    assert total == 4056


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("lagree2021", {"train": 29, "val": 7, "monuseg-breast": 8, "tnbc": 50}),
        ("ledinh2021", {"train": 19, "val": 5, "monuseg-breast": 8, "tnbc": 50}),
        ("kasturi2022", {"train": 44, "val": 11, "tnbc-test": 25}),
    ],
)
def test_protocol_split_sizes(name, sizes, monuseg_root, tnbc_root):
    splits = split_protocol(name, monuseg=monuseg_root, tnbc=tnbc_root, seed=0)
    assert {k: len(v) for k, v in splits.items()} == sizes
    ids = [r.id for records in splits.values() for r in records]
    assert len(ids) == len(set(ids)), "an image is in two splits"


def test_lagree_breast_hold_out(monuseg_root, tnbc_root):
    splits = split_protocol("lagree2021", monuseg=monuseg_root, tnbc=tnbc_root)
    breast = {r.id[:12] for r in splits["monuseg-breast"]}
    assert {"TCGA-AC-A2FO", "TCGA-AO-A0J2", "TCGA-A7-A13E", "TCGA-E2-A14V"} <= breast
    assert all(r.organ != "breast" for r in splits["train"] + splits["val"])


def test_kasturi_splits_tnbc_by_patient(monuseg_root, tnbc_root):
    for seed in range(3):
        splits = split_protocol("kasturi2022", monuseg=monuseg_root, tnbc=tnbc_root, seed=seed)
        test_patients = {r.patient for r in splits["tnbc-test"]}
        train_patients = {r.patient for r in splits["train"] + splits["val"] if r.dataset == "tnbc"}
        assert not test_patients & train_patients
        assert sum(r.dataset == "monuseg" for r in splits["train"] + splits["val"]) == 30


def _by_first_pixel(instances):
    """Relabel an instance map 1..N in the order of each nucleus' first pixel (raster order)."""
    ids, first = np.unique(instances, return_index=True)
    order = ids[1:][np.argsort(first[1:])] if ids[0] == 0 else ids[np.argsort(first)]
    lookup = np.zeros(int(ids.max()) + 1, dtype=np.int32)
    lookup[order] = np.arange(1, len(order) + 1)
    return lookup[instances]


def test_dsb_solution_csv_equals_the_test_masks(dsb_root):
    stage = dsb_root / "stage1_test"
    from_masks = DSB2018(stage, labels="masks").records()
    from_csv = DSB2018(stage, labels="csv").records()
    assert len(from_masks) == 65 and [r.id for r in from_masks] == [r.id for r in from_csv]
    total = 0
    for a, b in zip(from_masks, from_csv):
        masks, csv = a.load_instances(), b.load_instances()
        assert np.array_equal(_by_first_pixel(masks), _by_first_pixel(csv)), a.id
        total += int(csv.max())
    assert total == 4152


def test_dsb_solution_sizes_agree_with_the_images(dsb_root):
    table = read_csv(dsb_root / "stage1_solution.csv")
    assert len(table.rows) == 65 and sum(len(rows) for rows in table.rows.values()) == 4152
    for image_id, rows in table.rows.items():
        shape = image_shape(dsb_root / "stage1_test" / image_id / "images" / f"{image_id}.png")
        assert {row.size for row in rows} == {shape}, image_id


def test_long2020_on_the_dsb_download(dsb_root):
    splits = split_protocol("long2020", dsb=dsb_root, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 446, "val": 111, "test": 53}
    ids = [r.id for records in splits.values() for r in records]
    assert len(ids) == len(set(ids)), "an image is in two splits"
    assert {r.label_format for r in splits["train"] + splits["val"]} == {"dsb-rle"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nuclei = sum(int(r.load_instances().max()) for r in splits["train"] + splits["val"])
    # all 24,436 CSV rows lie in the 557 grey-scale images; 6 images have 1-2 pixels claimed twice
    assert nuclei == 24436
    assert len(caught) == 6 and all("claimed by two nuclei" in str(w.message) for w in caught)
