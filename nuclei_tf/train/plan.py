"""What a stacked run (GB U-Net, U-Net ensemble) is about to do, said before it starts: each
member reused or trained, its parameter count and the measured time of one training step on
this machine, then the same for the second stage (Lagree 2021 Fig. 1)."""
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class PlanRow:
    """One model of the plan; ``seconds_per_step`` is None when nothing is trained."""

    label: str
    action: str
    parameters: int
    trainable: int = 0
    seconds_per_step: float = None
    steps: int = 0
    epochs: int = 0

    def line(self):
        frozen = f" ({self.trainable:,} trainable)" if self.seconds_per_step is not None and self.trainable != self.parameters else ""
        text = f"  {self.label:<28} {self.parameters:>12,} params{frozen}  {self.action}"
        if self.seconds_per_step is None:
            return text
        epoch = self.seconds_per_step * self.steps
        return (f"{text}\n  {'':<28} {'':>19} ~{self.seconds_per_step:.2f} s/step x {self.steps} steps "
                f"= ~{epoch / 60:.1f} min/epoch, {self.epochs} epochs = ~{epoch * self.epochs / 60:.0f} min")


def step_seconds(model, batch_size, tile, channels=3):
    """Seconds of one forward + backward pass of ``model`` on a random batch, timed after a
    first (tracing) call. ``model`` is a throwaway: its BatchNorm statistics move."""
    import tensorflow as tf

    x = tf.random.uniform((batch_size, tile, tile, channels))
    variables = model.trainable_variables

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.cast(model(batch, training=True), tf.float32))
        return tape.gradient(loss, variables) if variables else loss

    step(x)
    start = time.perf_counter()
    step(x)
    return time.perf_counter() - start


def plan_row(label, action, build, config=None, steps=None):
    """A :class:`PlanRow` for the model ``build()`` returns; timed when ``config`` (the config it
    trains under) is given and the model has trainable weights. ``steps()`` gives the steps per
    epoch; it is called after the model is built, so a model that cannot be built (ImageNet
    weights missing offline) stops the plan before any data is loaded."""
    import keras

    model = build()
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    row = PlanRow(label, action, int(model.count_params()), trainable)
    if config is not None and model.trainable_variables:
        data = config["data"]
        row.seconds_per_step = step_seconds(model, data["batch_size"], data["tile"])
        row.steps, row.epochs = steps(), config["train"]["epochs"] + config["train"].get("fine_tune_epochs", 0)
    del model
    keras.backend.clear_session()
    return row
