"""Every experiment YAML resolves to a valid configuration."""
from pathlib import Path

import pytest

from nuclei_tf.data.protocols import PROTOCOLS
from nuclei_tf.models import get_spec
from nuclei_tf.train.config import load_config
from nuclei_tf.train.losses import LOSSES

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_experiment_resolves(path):
    config = load_config(path)
    assert config["protocol"] in PROTOCOLS and config["train"]["loss"] in LOSSES
    spec = get_spec(config["arch"])
    assert set(config["model"]) <= set(spec.options) | {"members"}
    assert config["data"]["classes"] == config["model"].get("classes", 1)


def test_overrides_and_unknown_keys(tmp_path):
    config = load_config(EXPERIMENTS[0], {"seed": 7, "train": {"epochs": 2}, "data": {"batch_size": None}})
    assert config["seed"] == 7 and config["train"]["seed"] == 7 and config["data"]["seed"] == 7
    assert config["train"]["epochs"] == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: unet\noptimiser: sgd\n")
    with pytest.raises(ValueError, match="bad.yaml: unknown key"):
        load_config(bad)
    with pytest.raises(ValueError, match="config: .*unexpected keyword argument 'epoch'"):
        load_config(None, {"train": {"epoch": 3}})
