"""Split protocols on synthetic data: determinism, disjointness, clear errors."""
import pytest

from nuclei_tf.data import DataError, MoNuSeg, split_protocol
from nuclei_tf.data.protocols import split_by_patient, train_val_split
from nuclei_tf.data.record import Record


def _records(patients):
    return [Record(f"{p}-{k}", "x", "breast", p, None, None, "instance-image") for p, n in patients for k in range(n)]


def test_train_val_split_is_deterministic_and_disjoint():
    records = _records([(f"p{i}", 1) for i in range(10)])
    a, b = train_val_split(records, seed=3), train_val_split(list(reversed(records)), seed=3)
    assert a == b and len(a["val"]) == 2 and len(a["train"]) == 8
    assert not {r.id for r in a["train"]} & {r.id for r in a["val"]}
    assert train_val_split(records, seed=4) != a


def test_split_by_patient_hits_half_without_sharing_patients():
    records = _records([("01", 7), ("02", 3), ("03", 5), ("04", 8), ("05", 4), ("06", 3), ("07", 3), ("08", 4),
                        ("09", 6), ("10", 4), ("11", 3)])
    rest, held = split_by_patient(records, seed=0)
    assert len(held) == 25 and len(rest) == 25
    assert not {r.patient for r in rest} & {r.patient for r in held}
    assert split_by_patient(records, seed=0) == (rest, held)


def test_protocols_on_synthetic_data(synthetic_monuseg, synthetic_tnbc, synthetic_dsb):
    lagree = split_protocol("lagree2021", monuseg=synthetic_monuseg, tnbc=synthetic_tnbc)
    assert [len(lagree[k]) for k in ("train", "val", "monuseg-breast", "tnbc")] == [2, 0, 2, 4]
    ledinh = split_protocol("ledinh2021", monuseg=synthetic_monuseg, tnbc=synthetic_tnbc)
    assert [r.id[:12] for r in ledinh["train"] + ledinh["val"]] == ["TCGA-B0-5698"]
    kasturi = split_protocol("kasturi2022", monuseg=synthetic_monuseg, tnbc=synthetic_tnbc)
    assert len(kasturi["tnbc-test"]) == 2
    challenge = split_protocol("monuseg2018", monuseg=synthetic_monuseg)  # no TNBC needed
    assert [len(challenge[k]) for k in ("train", "val", "monuseg-test")] == [2, 0, 2]
    assert {r.id for r in challenge["monuseg-test"]} == {r.id for r in MoNuSeg(synthetic_monuseg).test()}
    long = split_protocol("long2020", dsb=synthetic_dsb)
    assert sum(len(v) for v in long.values()) == 4 and set(long) == {"train", "val", "test"}


def test_missing_dataset_and_unknown_protocol(synthetic_monuseg):
    with pytest.raises(DataError, match="needs the tnbc folder"):
        split_protocol("lagree2021", monuseg=synthetic_monuseg)
    with pytest.raises(ValueError, match="unknown protocol 'nope'; choose one of folder, kasturi2022"):
        split_protocol("nope")
