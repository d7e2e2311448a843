"""GB U-Net and U-Net ensemble runs (Lagree 2021): members reused or trained, the plan, the
ensemble folder through calibrate / evaluate / predict / export, the offline ImageNet stop."""
import json
import time

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.main import cli
from nuclei_tf.inference import ModelBundle, load_bundle, save_bundle
from nuclei_tf.models import build_model
from nuclei_tf.train.config import load_config
from nuclei_tf.train.members import resolve_members

TINY = {"base_filters": 4, "depth": 3}
DATA = {"tile": 32, "overlap": 0.5, "batch_size": 2}
TRAIN = {"epochs": 1, "steps_per_epoch": 2, "learning_rate": 1e-3}


@pytest.fixture
def datasets(synthetic_monuseg, synthetic_tnbc):
    return ["--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc)]


def write_yaml(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


def saved_member(folder, stain="none"):
    """A model folder as ``calibrate`` writes it: model.keras + config.json."""
    return save_bundle(ModelBundle(build_model("unet", **TINY), stain=stain, tile=32), folder)


def fit(args, tmp_path, config):
    result = CliRunner().invoke(cli, ["fit", "--config", str(write_yaml(tmp_path / "exp.yaml", config)), *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_members_are_resolved_and_a_preprocessing_mismatch_is_refused(tmp_path):
    stage = load_config(None, {"arch": "gbunet", "members": [], "preprocess": {"stain": "macenko"}})
    good = saved_member(tmp_path / "good", stain="macenko")
    write_yaml(tmp_path / "m.yaml", {"arch": "unet", "model": TINY, "preprocess": {"stain": "macenko"}})
    members = resolve_members([str(good), {"config": str(tmp_path / "m.yaml"), "run": str(tmp_path / "r")},
                               {"arch": "unet_plus", **TINY}], stage, tmp_path / "run")
    assert [m.finished for m in members] == [True, False, False]
    assert members[1].model_path == tmp_path / "r" / "best.keras" and members[1].config["arch"] == "unet"
    assert members[2].run_dir == tmp_path / "run" / "members" / "2"
    with pytest.raises(ValueError, match=r"bad.*trained on \{'stain': 'none'"):
        resolve_members([str(saved_member(tmp_path / "bad"))], stage, tmp_path / "run")
    write_yaml(tmp_path / "clahe.yaml", {"arch": "unet", "preprocess": {"stain": "macenko", "clahe_tv": True}})
    with pytest.raises(ValueError, match="clahe.yaml trains on"):
        resolve_members([{"config": str(tmp_path / "clahe.yaml")}], stage, tmp_path / "run")
    with pytest.raises(ValueError, match="member 0: unknown key"):
        resolve_members([{"config": str(tmp_path / "m.yaml"), "epochs": 3}], stage, tmp_path / "run")
    with pytest.raises(ValueError, match="missing.keras: model file not found"):
        resolve_members([str(tmp_path / "missing.keras")], stage, tmp_path / "run")
    with pytest.raises(ValueError, match="needs members"):
        resolve_members([], stage, tmp_path / "run")


def test_gbunet_trains_missing_members_once_and_reuses_them(datasets, tmp_path):
    reused = saved_member(tmp_path / "reused")
    write_yaml(tmp_path / "member.yaml", {"arch": "unet_plus", "model": TINY, "data": DATA, "train": TRAIN})
    config = {"arch": "gbunet", "model": {**TINY, "classes": 1}, "data": DATA, "train": TRAIN,
              "members": [str(reused), {"config": str(tmp_path / "member.yaml"), "run": str(tmp_path / "member_run")}]}
    output = fit([*datasets, "--out", str(tmp_path / "gb")], tmp_path, config)
    assert "member 1/2 reused" in output and "member 2/2 unet_plus" in output and "stage 2 gbunet" in output
    assert "params" in output and "s/step x 2 steps" in output and "min/epoch" in output
    member = tmp_path / "member_run" / "best.keras"
    assert member.is_file() and (tmp_path / "member_run" / "summary.json").is_file()
    stamp = member.stat().st_mtime_ns
    time.sleep(0.01)
    again = fit([*datasets, "--out", str(tmp_path / "gb2")], tmp_path, config)
    assert "reuse " + str(member) in again and member.stat().st_mtime_ns == stamp, "a trained member is not retrained"
    model = load_bundle(tmp_path / "gb2" / "best.keras").model
    assert [layer.name for layer in model.layers if layer.name.startswith("member_")] == ["member_0_unet", "member_1_unet_plus"]
    exported = CliRunner().invoke(cli, ["export", str(tmp_path / "gb2" / "best.keras"), "--out", str(tmp_path / "serving")])
    assert exported.exit_code == 0 and (tmp_path / "serving" / "1" / "saved_model.pb").is_file(), exported.output


def test_ensemble_folder_is_a_model_like_any_other(datasets, tmp_path):
    members = [str(saved_member(tmp_path / "a")), str(saved_member(tmp_path / "b"))]
    output = fit([*datasets, "--out", str(tmp_path / "ens")], tmp_path,
                 {"arch": "ensemble", "members": members, "data": DATA, "train": TRAIN})
    assert "stage 2 ensemble" in output and "assemble" in output
    summary = json.loads((tmp_path / "ens" / "summary.json").read_text())
    assert summary["epochs"] == 0 and summary["arch"] == "ensemble"
    runner = CliRunner()
    calibrated = runner.invoke(cli, ["calibrate", str(tmp_path / "ens" / "best.keras"), *datasets, "--protocol", "kasturi2022", "--out", str(tmp_path / "folder")],
                               catch_exceptions=False)
    assert calibrated.exit_code == 0, calibrated.output
    bundle = load_bundle(tmp_path / "folder")
    image = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    expected = np.mean([load_bundle(m).model.predict(image, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(bundle.model.predict(image, verbose=0), expected, atol=1e-6)
    Image.fromarray((image[0] * 255).astype(np.uint8)).save(tmp_path / "slide.png")
    for command in (["evaluate", "--model", str(tmp_path / "folder"), *datasets, "--protocol", "kasturi2022", "--out", str(tmp_path / "report")],
                    ["predict", str(tmp_path / "slide.png"), "--model", str(tmp_path / "folder"), "--out", str(tmp_path / "pred")],
                    ["export", str(tmp_path / "folder"), "--out", str(tmp_path / "serving")]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, (command[0], result.output)
    assert (tmp_path / "pred" / "slide.labels.tif").is_file() and (tmp_path / "serving" / "1" / "saved_model.pb").is_file()


def test_fit_gbunet_without_config_offline_stops_at_once_naming_the_weights(datasets, tmp_path, monkeypatch):
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["fit", "--arch", "gbunet", *datasets, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "vgg19" in result.output and ".h5" in result.output and "Nothing was trained" in result.output
    assert "experiments/lagree2021-gbunet-cpu.yaml" in result.output
    assert not (tmp_path / "run" / "members" / "0" / "best.keras").exists()
    assert time.perf_counter() - started < 60


def test_the_shipped_ensemble_is_a_model_folder_of_three_frozen_members():
    bundle = load_bundle("lagree2021_ensemble_cpu")
    members = [layer for layer in bundle.model.layers if layer.name.startswith("member_")]
    assert len(members) == 3 and not bundle.model.trainable_weights
    assert bundle.info["arch"] == "ensemble" and bundle.mpp == 0.25 and bundle.stain == "macenko"
    tiles = np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    probability = bundle.probabilities(tiles)
    expected = np.mean([np.asarray(m(tiles / 255.0))[..., -1] for m in members], axis=0)
    np.testing.assert_allclose(probability, expected, atol=1e-5)
