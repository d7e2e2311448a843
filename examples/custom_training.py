"""Training a nuclei-tf model from your own script, with your own Keras callbacks.

    python examples/custom_training.py --monuseg ../shared/data/MoNuSeg --tnbc ../shared/data/TNBC --out runs/example

The Trainer runs nuclei-tf's tf.function loop (weight-map losses, checkpoints, resume)
and drives any standard ``keras.callbacks`` you pass, exactly as ``model.fit`` would.
"""
import argparse

import keras

from nuclei_tf.data import split_protocol
from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare
from nuclei_tf.models import build_model
from nuclei_tf.train.trainer import TrainConfig, Trainer


def main(monuseg, tnbc, out, epochs=2, steps=5, base_filters=8, tile=128):
    splits = split_protocol("lagree2021", monuseg=monuseg, tnbc=tnbc, seed=0)
    data = PipelineConfig(tile=tile, overlap=0.1, batch_size=4)
    train = TrainingPipeline(prepare(splits["train"], data), data)
    val = TrainingPipeline(prepare(splits["val"], data), data, training=False) if splits["val"] else None
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss" if val else "loss", patience=10, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=3),
        keras.callbacks.CSVLogger(f"{out}/history.csv"),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(f"epoch {epoch + 1}: {logs}")),
    ]
    trainer = Trainer(
        lambda: build_model("unet_plus", base_filters=base_filters, depth=5),
        train,
        val,
        TrainConfig(epochs=epochs, steps_per_epoch=steps, learning_rate=5e-4, loss="lagree2021"),
        out,
        callbacks,
    )
    return trainer.fit()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monuseg", required=True)
    parser.add_argument("--tnbc", required=True)
    parser.add_argument("--out", default="runs/example")
    parser.add_argument("--epochs", type=int, default=2)
    main(**vars(parser.parse_args()))
