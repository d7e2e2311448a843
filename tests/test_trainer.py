"""The training loop: callbacks, checkpoints, exact resume, Ctrl-C, NaN, precision, the fit CLI."""
import json

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from nuclei_tf.cli.fit import check_run_folder
from nuclei_tf.cli.main import cli
from nuclei_tf.data import InstanceFolder
from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare
from nuclei_tf.models import build_model
from nuclei_tf.train.config import load_config
from nuclei_tf.train.precision import resolve_precision
from nuclei_tf.train.trainer import NonFiniteLossError, TrainConfig, Trainer, TrainingInterrupted

TINY = {"base_filters": 4, "depth": 3}


@pytest.fixture
def pipelines(synthetic_folder):
    config = PipelineConfig(tile=16, overlap=0.5, batch_size=2)
    prepared = prepare(InstanceFolder(synthetic_folder).records(), config)
    return TrainingPipeline(prepared, config), TrainingPipeline(prepared, config, training=False)


def make_trainer(pipelines, run_dir, epochs=2, callbacks=(), **train):
    config = TrainConfig(epochs=epochs, learning_rate=1e-2, steps_per_epoch=3, **train)
    return Trainer(lambda: build_model("unet_plus", **TINY), *pipelines, config, run_dir, callbacks, verbose=False)


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_fit_writes_best_and_last_and_drives_keras_callbacks(pipelines, tmp_path):
    seen = []
    callbacks = [
        keras.callbacks.CSVLogger(str(tmp_path / "h.csv")),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs)))),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "mc.keras")),
    ]
    trainer = make_trainer(pipelines, tmp_path / "run", callbacks=callbacks)
    history = trainer.fit()
    assert [h["epoch"] for h in history] == [1, 2]
    assert [epoch for epoch, _ in seen] == [0, 1]
    assert all({"dice", "loss", "val_dice", "val_loss"} <= set(keys) for _, keys in seen)
    assert float(trainer.optimizer.learning_rate) == pytest.approx(0.005)  # first epoch sets the reference
    assert (tmp_path / "h.csv").read_text().count("\n") == 3 and (tmp_path / "mc.keras").is_file()
    assert (tmp_path / "run" / "best.keras").is_file()
    state = json.loads((tmp_path / "run" / "checkpoints" / "last" / "state.json").read_text())
    assert state["epoch"] == 2 and state["step"] == 6
    loaded = keras.saving.load_model(tmp_path / "run" / "best.keras", safe_mode=True)
    assert loaded.count_params() == trainer.model.count_params()
    last = keras.saving.load_model(tmp_path / "run" / "last.keras", safe_mode=True)  # the model after epoch 2
    for saved, trained in zip(last.get_weights(), trainer.model.get_weights()):
        np.testing.assert_array_equal(saved, trained)


def test_early_stopping_stops_the_loop(pipelines, tmp_path):
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=100.0)
    assert len(make_trainer(pipelines, tmp_path, epochs=5, callbacks=[stop]).fit()) == 2


def test_resume_after_an_epoch_matches_an_uninterrupted_run(pipelines, tmp_path):
    straight = make_trainer(pipelines, tmp_path / "a")
    straight.fit()
    make_trainer(pipelines, tmp_path / "b", epochs=1).fit()
    resumed = make_trainer(pipelines, tmp_path / "b", epochs=2)
    resumed.fit(resume=True)
    assert_same_weights(weights_of(straight.model), weights_of(resumed.model))
    assert_same_weights([v.numpy() for v in straight.optimizer.variables], [v.numpy() for v in resumed.optimizer.variables])


def test_ctrl_c_saves_the_position_and_resume_finishes_identically(pipelines, tmp_path):
    straight = make_trainer(pipelines, tmp_path / "a")
    straight.fit()

    def interrupt(batch, logs):
        if batch == 1:
            raise KeyboardInterrupt

    stopper = keras.callbacks.LambdaCallback(on_train_batch_end=interrupt)
    with pytest.raises(TrainingInterrupted, match="epoch 2, batch 2"):
        make_trainer(pipelines, tmp_path / "b", callbacks=[_after_first_epoch(stopper)]).fit()
    state = json.loads((tmp_path / "b" / "checkpoints" / "last" / "state.json").read_text())
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 5)
    resumed = make_trainer(pipelines, tmp_path / "b")
    resumed.fit(resume=True)
    assert_same_weights(weights_of(straight.model), weights_of(resumed.model))


def _after_first_epoch(callback):
    """Forward batch events to ``callback`` only from the second epoch on."""

    class Gate(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch >= 1:
                callback.on_train_batch_end(batch, logs)

    return Gate()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(pipelines, tmp_path):
    class Poison(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                layer = self.model.get_layer("logits")
                layer.kernel.assign(np.full(layer.kernel.shape, np.nan, np.float32))

    trainer = make_trainer(pipelines, tmp_path, epochs=3, callbacks=[Poison()])
    with pytest.raises(NonFiniteLossError, match="loss is nan at epoch 2, batch 2"):
        trainer.fit()
    state = json.loads((tmp_path / "checkpoints" / "last" / "state.json").read_text())
    assert state["epoch"] == 1
    good = keras.saving.load_model(tmp_path / "best.keras")
    assert all(np.isfinite(w).all() for w in good.get_weights())
    assert not (tmp_path / "last.keras").exists()  # a failed run has no last model


def test_resume_without_checkpoint_is_a_clear_error(pipelines, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        make_trainer(pipelines, tmp_path).fit(resume=True)


def test_auto_precision_is_float32_on_cpu():
    assert resolve_precision("auto") == "float32"
    with pytest.raises(ValueError):
        resolve_precision("float8")


def test_mixed_float16_step_uses_loss_scaling(pipelines, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        trainer = make_trainer(pipelines, tmp_path, epochs=1)
        assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
        history = trainer.fit()
        assert np.isfinite(history[0]["loss"])
        x = np.zeros((1, 16, 16, 3), np.float32)
        assert trainer.model(x).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_fit_cli_run_folder_and_gbunet_two_stages(synthetic_monuseg, synthetic_tnbc, tmp_path):
    member = {"arch": "unet_plus", **TINY, "classes": 2}
    config = {
        "arch": "gbunet",
        "model": {"base_filters": 4, "depth": 3, "classes": 2},
        "members": [member],
        "data": {"tile": 32, "overlap": 0.5, "batch_size": 2},
        "train": {"epochs": 1, "steps_per_epoch": 2, "learning_rate": 1e-3},
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    args = ["fit", "--config", str(tmp_path / "exp.yaml"), "--monuseg", str(synthetic_monuseg),
            "--tnbc", str(synthetic_tnbc), "--out", str(tmp_path / "run"), "--seed", "3"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    for name in ("config.yaml", "environment.json", "datasets.json", "history.csv", "best.keras", "summary.json",
                 "tensorboard", "loss_curve.png"):
        assert (run / name).exists(), name
    assert (run / "members" / "0" / "best.keras").is_file() and (run / "members" / "0" / "summary.json").is_file()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["seed"] == 3 and resolved["data"]["classes"] == 2
    assert json.loads((run / "environment.json").read_text())["precision"] == "float32"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["arch"] == "gbunet" and summary["images"]["train"] == 2
    checksums = json.loads((run / "datasets.json").read_text())
    assert len(checksums["train"]) == 2 and all(len(v["image"]) == 64 for v in checksums["train"].values())
    model = keras.saving.load_model(run / "best.keras", safe_mode=True)
    frozen = [layer for layer in model.layers if layer.name.startswith("member_")]
    assert frozen and not any(layer.trainable for layer in frozen)
    resumed = CliRunner().invoke(cli, ["fit", "--out", str(run), "--resume", "--epochs", "2", "--monuseg",
                                       str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc)], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert [h["epoch"] for h in json.loads((run / "summary.json").read_text())["history"]] == [1, 2]


def test_example_script_runs_with_user_callbacks(synthetic_monuseg, synthetic_tnbc, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "custom_training.py"
    spec = importlib.util.spec_from_file_location("custom_training", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    tmp_path.mkdir(exist_ok=True)
    history = example.main(synthetic_monuseg, synthetic_tnbc, str(tmp_path), epochs=1, steps=2, base_filters=2, tile=32)
    assert len(history) == 1 and (tmp_path / "history.csv").is_file()


def test_fine_tuning_epochs_lower_the_learning_rate_and_resume_exactly(pipelines, tmp_path):
    """Long 2020's U-Net++: 20 epochs, then 5 more at a smaller learning rate (here 2 + 1)."""
    seen = []
    spy = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(float(spy.model.optimizer.learning_rate)))
    straight = make_trainer(pipelines, tmp_path / "a", callbacks=[spy], fine_tune_epochs=1, fine_tune_learning_rate=1e-3)
    assert [h["epoch"] for h in straight.fit()] == [1, 2, 3]
    assert seen == pytest.approx([1e-2, 1e-2, 1e-3])
    make_trainer(pipelines, tmp_path / "b", epochs=2).fit()
    resumed = make_trainer(pipelines, tmp_path / "b", fine_tune_epochs=1, fine_tune_learning_rate=1e-3)
    resumed.fit(resume=True)
    assert float(resumed.optimizer.learning_rate) == pytest.approx(1e-3)
    assert_same_weights(weights_of(straight.model), weights_of(resumed.model))
    with pytest.raises(ValueError, match="needs fine_tune_learning_rate"):
        TrainConfig(fine_tune_epochs=5)


def test_weight_average_is_what_is_validated_and_saved_and_resumes_exactly(pipelines, tmp_path):
    """ema_momentum: best/last hold the moving average of the weights after every step, computed
    here by hand from the raw weights; the checkpoint keeps the raw ones; resume is exact."""
    raw = []
    recorder = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: raw.append(
        [v.numpy().copy() for v in recorder.model.trainable_variables]))
    straight = make_trainer(pipelines, tmp_path / "a", callbacks=[recorder], ema_momentum=0.5)
    history = straight.fit()
    assert len(raw) == 6
    averages = [raw[0]]
    for weights in raw[1:]:
        averages.append([0.5 * a + 0.5 * w for a, w in zip(averages[-1], weights)])
    average = averages[-1]
    last = keras.saving.load_model(tmp_path / "a" / "last.keras", safe_mode=True)
    assert_same_weights([v.numpy() for v in last.trainable_variables], average)
    assert_same_weights([v.numpy() for v in straight.model.trainable_variables], average)
    assert straight._validate()["val_loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-5)  # validated averaged
    best_epoch = min(history, key=lambda h: h["val_loss"])["epoch"]
    best = keras.saving.load_model(tmp_path / "a" / "best.keras", safe_mode=True)
    assert_same_weights([v.numpy() for v in best.trainable_variables], averages[3 * best_epoch - 1])
    checkpointed = build_model("unet_plus", **TINY)
    checkpointed.load_weights(tmp_path / "a" / "checkpoints" / "last" / "weights.weights.h5")
    assert_same_weights([v.numpy() for v in checkpointed.trainable_variables], raw[-1])
    assert not np.allclose(raw[-1][0], average[0])
    make_trainer(pipelines, tmp_path / "b", epochs=1, ema_momentum=0.5).fit()
    resumed = make_trainer(pipelines, tmp_path / "b", ema_momentum=0.5)
    resumed.fit(resume=True)
    assert_same_weights(weights_of(straight.model), weights_of(resumed.model))
    for bad in (1.0, 0.0, "0.9", 1):
        with pytest.raises(ValueError, match="ema_momentum must be between 0 and 1"):
            TrainConfig(ema_momentum=bad)


def test_fit_cli_runs_a_long2020_experiment_on_the_dsb_download(synthetic_dsb_download, tmp_path):
    """The shipped long2020 YAML (CLAHE + TV, grid + random crops, Long's augmentations and loss,
    U-Net++ fine-tuning) through `nuclei-tf fit --dsb`, shrunk to tiny sizes."""
    from pathlib import Path

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / "long2020-unetpp-b16.yaml").read_text())
    config["model"].update(base_filters=4, depth=3)
    config["data"].update(tile=16, batch_size=2)
    config["train"].update(epochs=1, fine_tune_epochs=1, steps_per_epoch=1)
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(config))
    args = ["fit", "--config", str(tmp_path / "long.yaml"), "--dsb", str(synthetic_dsb_download), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["protocol"] == "long2020" and summary["images"] == {"train": 4, "val": 1, "test": 3}
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert all(np.isfinite(h["val_loss"]) for h in summary["history"])


def test_fit_calibrate_and_predict_a_three_class_unet_plus(synthetic_monuseg, synthetic_tnbc, tmp_path):
    """The shipped three-class experiment (Kumar 2017 head, loss three_class), shrunk: 2 training
    steps through `nuclei-tf fit`, `calibrate` searching threshold x marker threshold, then an
    image segmented into int32 nuclei."""
    from pathlib import Path

    from nuclei_tf.inference import load_bundle, segment

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / "lagree2021-unet-plus-three-class.yaml").read_text())
    config["model"].update(TINY)
    config["data"].update(tile=32, batch_size=2)
    config["train"].update(epochs=1, steps_per_epoch=2)
    (tmp_path / "three.yaml").write_text(yaml.safe_dump(config))
    data = ["--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc), "--protocol", "kasturi2022"]  # has a val split
    result = CliRunner().invoke(cli, ["fit", "--config", str(tmp_path / "three.yaml"), *data, "--out", str(tmp_path / "run")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "run" / "summary.json").read_text())["history"]
    assert all(np.isfinite([h["loss"], h["dice"], h["val_loss"], h["val_dice"]]).all() for h in history)
    calibrated = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "run" / "best.keras"), *data, "--min-area", "0.625,2.5",
                                          "--min-marker-sizes", "1,20", "--metric", "aji,f1@0.5", "--out", str(tmp_path / "folder")],
                                    catch_exceptions=False)
    assert calibrated.exit_code == 0, calibrated.output
    bundle, for_f1 = load_bundle(tmp_path / "folder" / "aji"), load_bundle(tmp_path / "folder" / "f1@0.5")
    table = bundle.info["calibration"]["table"]
    assert for_f1.info["calibration"]["metric"] == "f1@0.5" and for_f1.info["calibration"]["table"].keys() == table.keys()
    assert bundle.postprocess.split == "markers" and bundle.postprocess.min_size in (10, 40)
    assert bundle.postprocess.min_marker_size in (1, 20)
    assert len(table) == 200 and "markers@0.8@0.9+marker/2.5um2" in table and "markers@0.4@0.5" in table
    assert "markers@0.4@0.5>=20+marker/2.5um2" in table
    probability, instances = segment(bundle, np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8))
    assert probability.shape == (48, 40, 2) and instances.shape == (48, 40) and instances.dtype == np.int32


@pytest.mark.parametrize("experiment, stain", [("lagree2021-unet-plus-hv-hed-ema", "macenko"),
                                               ("lagree2021-unet-plus-hv-hed-ema-percentile", "percentile")])
def test_fit_calibrate_and_predict_an_hv_unet_plus(synthetic_monuseg, synthetic_tnbc, tmp_path, experiment, stain):
    """The HoVer-Net head experiments, shrunk: 2 training steps (loss hover, targets from the augmented
    instance maps), `calibrate` on the hv grid (NP threshold x interior-ness x marker opening x
    whether a nucleus needs a marker), then an image segmented with and without TTA; the model
    folder records the input normalisation (Macenko, or StarDist's percentiles)."""
    from dataclasses import replace
    from pathlib import Path

    from nuclei_tf.inference import load_bundle, segment
    from nuclei_tf.train.config import load_config

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "experiments" / f"{experiment}.yaml").read_text())
    config["model"].update(TINY)
    config["data"].update(tile=32, batch_size=2)
    config["train"].update(epochs=1, steps_per_epoch=2)
    (tmp_path / "hv.yaml").write_text(yaml.safe_dump(config))
    assert load_config(tmp_path / "hv.yaml")["data"]["classes"] == 4
    data = ["--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc), "--protocol", "kasturi2022"]
    result = CliRunner().invoke(cli, ["fit", "--config", str(tmp_path / "hv.yaml"), *data, "--out", str(tmp_path / "run")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "run" / "summary.json").read_text())["history"]
    assert all(np.isfinite([h["loss"], h["dice"], h["val_loss"], h["val_dice"]]).all() for h in history)
    calibrated = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "run" / "best.keras"), *data, "--out", str(tmp_path / "folder")],
                                    catch_exceptions=False)
    assert calibrated.exit_code == 0, calibrated.output
    bundle = load_bundle(tmp_path / "folder")
    table = bundle.info["calibration"]["table"]
    assert bundle.postprocess.split == "markers" and len(table) == 60 and bundle.stain == stain
    assert "markers@0.4@0.45" in table and "markers@0.6@0.56~open2+marker" in table
    assert json.loads((tmp_path / "folder" / "config.json").read_text())["postprocess"]["marker_opening"] in (0, 2)
    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    probability, instances = segment(bundle, image)
    assert probability.shape == (48, 40, 2) and instances.shape == (48, 40) and instances.dtype == np.int32
    assert 0 <= probability.min() and probability.max() <= 1
    with_tta, _ = segment(replace(bundle, tta=True), image)
    assert with_tta.shape == (48, 40, 2)


def test_heads_and_losses_go_together(tmp_path):
    from nuclei_tf.train.config import load_config

    for head, loss in (("hv", "lagree2021"), ("foreground", "hover"), ("three_class", "hover"), ("hv", "three_class"),
                       ("rays", "hover"), ("foreground", "stardist")):
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"model": {"head": head}, "train": {"loss": loss}}))
        with pytest.raises(ValueError, match="head: three_class and loss: three_class; head: hv and loss: hover; "
                                             "head: rays and loss: stardist go together"):
            load_config(tmp_path / "bad.yaml")


def test_fit_refuses_to_mix_two_runs_in_one_folder(synthetic_monuseg, synthetic_tnbc, tmp_path):
    config = {"arch": "unet_plus", "model": TINY, "data": {"tile": 32, "batch_size": 2}, "train": {"epochs": 1, "steps_per_epoch": 1}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    base = ["fit", "--config", str(tmp_path / "exp.yaml"), "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc),
            "--out", str(tmp_path / "run")]
    runner = CliRunner()
    assert runner.invoke(cli, base, catch_exceptions=False).exit_code == 0
    stamp = (tmp_path / "run" / "best.keras").stat().st_mtime_ns
    again = runner.invoke(cli, base)
    assert again.exit_code == 2 and "holds a finished run" in again.output and "--overwrite" in again.output
    other = runner.invoke(cli, [*base, "--resume", "--batch-size", "4"])
    assert other.exit_code == 2 and "other settings (data)" in other.output
    assert (tmp_path / "run" / "best.keras").stat().st_mtime_ns == stamp
    assert runner.invoke(cli, [*base, "--overwrite"], catch_exceptions=False).exit_code == 0
    assert len(json.loads((tmp_path / "run" / "summary.json").read_text())["history"]) == 1
    for bad in (["--epochs", "0"], ["--batch-size", "0"], ["--steps-per-epoch", "-1"]):
        result = runner.invoke(cli, [*base[:-1], str(tmp_path / "new"), *bad])
        assert result.exit_code == 2 and bad[0] in result.output
    assert not (tmp_path / "new").exists()
    fresh = runner.invoke(cli, [*base[:-1], str(tmp_path / "none"), "--resume"])
    assert fresh.exit_code == 2 and "holds no run" in fresh.output
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del recorded["data"]["boundary_width"]  # a run recorded before that setting existed
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(recorded))
    check_run_folder(tmp_path / "run", load_config(tmp_path / "exp.yaml"), resume=True, overwrite=False)


def test_sigterm_stops_fit_like_ctrl_c_and_the_run_resumes(synthetic_monuseg, synthetic_tnbc, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    config = {"arch": "unet_plus", "model": TINY, "data": {"tile": 32, "batch_size": 2}, "train": {"epochs": 500, "steps_per_epoch": 2}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "nuclei_tf", "fit", "--config", str(tmp_path / "exp.yaml"), "--monuseg", str(synthetic_monuseg),
               "--tnbc", str(synthetic_tnbc), "--out", str(run)]
    # PYTHONFAULTHANDLER: a child that does not stop is aborted and prints every thread's stack
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    deadline = time.time() + 120
    while not (run / "checkpoints" / "last").exists() and time.time() < deadline and child.poll() is None:
        time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    try:
        output, _ = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)
        output, _ = child.communicate()
        pytest.fail(f"fit did not stop within 60 s of SIGTERM; its stacks:\n{output[-6000:]}")
    assert child.returncode == 130 and "continue with --resume" in output, output[-2000:]
    done = json.loads((run / "checkpoints" / "last" / "state.json").read_text())["epoch"]
    resumed = CliRunner().invoke(cli, ["fit", "--out", str(run), "--resume", "--epochs", str(done + 1), "--monuseg",
                                       str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc)], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads((run / "summary.json").read_text())["history"]) == done + 1
