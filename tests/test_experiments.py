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
    head = config["model"].get("head", "foreground")
    assert config["data"]["classes"] == {"three_class": 3, "hv": 4, "rays": 33}.get(head, config["model"].get("classes", 1))
    assert {"three_class": "three_class", "hv": "hover", "rays": "stardist"}.get(head) == (
        config["train"]["loss"] if head != "foreground" else None)


def test_the_three_class_experiment_is_the_cpu_recipe_with_the_three_class_head():
    experiments = Path(__file__).resolve().parents[1] / "experiments"
    three_class = load_config(experiments / "lagree2021-unet-plus-three-class.yaml")
    recipe = load_config(experiments / "unet_plus_cpu.yaml")
    assert three_class["model"] == {**{k: v for k, v in recipe["model"].items() if k != "classes"}, "head": "three_class"}
    assert three_class["data"] == {**recipe["data"], "classes": 3}
    assert three_class["train"] == {**recipe["train"], "loss": "three_class"}
    assert {k: three_class[k] for k in ("protocol", "arch", "preprocess", "seed")} == {k: recipe[k] for k in ("protocol", "arch", "preprocess", "seed")}


def test_head_and_loss_go_together_and_stacked_models_refuse_the_head():
    with pytest.raises(ValueError, match="head 'three_class' with train loss 'lagree2021'"):
        load_config(None, {"model": {"head": "three_class"}})
    with pytest.raises(ValueError, match="head 'foreground' with train loss 'three_class'"):
        load_config(None, {"train": {"loss": "three_class"}})
    with pytest.raises(ValueError, match="gbunet \\(a stacked model\\) and its members have the foreground head only"):
        load_config(None, {"arch": "gbunet", "model": {"head": "three_class"}, "train": {"loss": "three_class"}})
    with pytest.raises(ValueError, match="ensemble \\(a stacked model\\)"):
        load_config(None, {"arch": "ensemble", "members": [{"arch": "unet_plus", "head": "three_class"}]})


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
    with pytest.raises(ValueError, match="config: ema_momentum must be between 0 and 1 .*got 1.5"):
        load_config(None, {"train": {"ema_momentum": 1.5}})


def test_the_resolved_config_spells_out_the_augmentation_that_runs():
    from nuclei_tf.preprocess.augment import DEFAULT_AUGMENTATION

    assert load_config()["data"]["augment"] == DEFAULT_AUGMENTATION
    assert load_config(overrides={"data": {"augment": None}})["data"]["augment"] == DEFAULT_AUGMENTATION
    assert load_config(overrides={"data": {"augment": {}}})["data"]["augment"] == {}
    flips = {"flip_h": {"p": 0.5}}
    assert load_config(overrides={"data": {"augment": flips}})["data"]["augment"] == flips
