"""The training loop: custom ``tf.function`` train/validation steps driven epoch by epoch,
standard Keras callbacks, atomic best/last checkpoints, exact resume, and clean stops on
Ctrl-C and on a non-finite loss.

Adam with the paper's learning rate, optionally keeping an exponential moving average of the
weights (``TrainConfig.ema_momentum``); under mixed_float16 the optimizer is wrapped in a
LossScaleOptimizer (dynamic loss scaling); optional gradient clipping by global norm.
Works under any tf.distribute strategy (gradients are all-reduced by the optimizer).
"""
import contextlib
import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from nuclei_tf.train.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from nuclei_tf.train.distribute import is_chief, select_strategy
from nuclei_tf.train.losses import dice_per_image, get_loss, nucleus_channel
from nuclei_tf.train.settings import TrainConfig  # noqa: F401  (re-exported: the trainer's config)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the run stopped and kept its last good checkpoint."""


class TrainingInterrupted(RuntimeError):
    """Ctrl-C: the position was checkpointed; ``--resume`` continues from it."""


def hard_dice(y_true, y_pred):
    """Mean Dice of the thresholded nucleus probability (interior + boundary for the three_class
    head), a progress metric."""
    predicted = tf.cast(nucleus_channel(tf.cast(y_pred, tf.float32)) > 0.5, tf.float32)
    return tf.reduce_mean(dice_per_image(nucleus_channel(tf.cast(y_true, tf.float32)), predicted, smooth=1.0))


class Trainer:
    """Train ``build_model()`` on ``train_data`` (a :class:`~nuclei_tf.data.pipeline.TrainingPipeline`).

    ``run_dir`` receives ``checkpoints/last`` (every epoch end and on Ctrl-C) and
    ``best.keras`` (lowest validation loss). ``callbacks`` are any ``keras.callbacks``; ``label``
    prefixes the progress bars (e.g. "member 2/3 unet_modified").
    """

    def __init__(self, build_model, train_data, val_data, config, run_dir, callbacks=(), strategy=None, verbose=True, label=""):
        self.config, self.train_data, self.val_data, self.label = config, train_data, val_data, label
        self.run_dir = Path(run_dir)
        self.strategy = strategy or select_strategy()
        self.chief = is_chief(self.strategy)
        self.verbose = verbose and self.chief
        self.loss_fn = get_loss(config.loss)
        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.model = build_model()
            averaging = {} if config.ema_momentum is None else {"use_ema": True, "ema_momentum": config.ema_momentum}
            optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm, **averaging)
            if keras.mixed_precision.global_policy().name == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            self.optimizer = optimizer
            self.model.compile(optimizer=optimizer)  # lets callbacks such as ReduceLROnPlateau reach it
            self.optimizer.build(self.model.trainable_variables)
        self.callbacks = keras.callbacks.CallbackList(list(callbacks), add_history=True, model=self.model)
        self._train_step = tf.function(self._distributed(self._step_fn(training=True)))
        self._val_step = tf.function(self._distributed(self._step_fn(training=False)))
        self._sync_statistics = tf.function(self._sync_statistics_fn)

    @property
    def last_dir(self):
        return self.run_dir / "checkpoints" / "last"

    @property
    def best_path(self):
        return self.run_dir / "best.keras"

    def _step_fn(self, training):
        replicas = self.strategy.num_replicas_in_sync

        def step(x, y, w):
            with tf.GradientTape() as tape:
                pred = self.model(x, training=training)
                loss = self.loss_fn(y, pred, w)
                total = loss + tf.add_n(self.model.losses) if self.model.losses else loss
                scaled = self.optimizer.scale_loss(total / replicas)
            if training:
                grads = tape.gradient(scaled, self.model.trainable_variables)
                self.optimizer.apply(grads, self.model.trainable_variables)
            return loss, hard_dice(y, pred)

        return step

    def _distributed(self, step):
        def run(x, y, w):
            loss, dice = self.strategy.run(step, args=(x, y, w))
            mean = tf.distribute.ReduceOp.MEAN
            return self.strategy.reduce(mean, loss, axis=None), self.strategy.reduce(mean, dice, axis=None)

        return run

    def _sync_statistics_fn(self):
        """Average non-trainable state (BatchNorm moving statistics) over replicas, so every
        worker holds the same model: gradients are all-reduced, batch statistics are not."""
        variables = self.model.non_trainable_variables

        def average():
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables])

        averaged = self.strategy.run(average)
        for variable, value in zip(variables, averaged):
            variable.assign(self.strategy.experimental_local_results(value)[0])

    def _batches(self, pipeline, epoch, skip=0, limit=None):
        data = pipeline.dataset(epoch, skip_batches=skip)
        if limit is not None:
            data = data.take(max(limit - skip, 0))
        if self.strategy.num_replicas_in_sync > 1:
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            data = self.strategy.experimental_distribute_dataset(data.with_options(options))
        return data

    def _train_epoch(self, epoch, state):
        steps = self.train_data.steps(epoch)
        if self.config.steps_per_epoch:
            steps = min(steps, self.config.steps_per_epoch)
        losses, dices = [], []
        bar = tqdm(total=steps, initial=state["batch"], desc=f"{self.label + ' ' if self.label else ''}epoch {epoch + 1}/{self.config.total_epochs}",
                   disable=not self.verbose, leave=True)
        for x, y, w in self._batches(self.train_data, epoch, skip=state["batch"], limit=steps):
            self.callbacks.on_train_batch_begin(state["batch"])
            loss, dice = self._train_step(x, y, w)
            loss, dice = float(loss), float(dice)
            if not math.isfinite(loss):
                raise NonFiniteLossError(
                    f"loss is {loss} at epoch {epoch + 1}, batch {state['batch'] + 1}; training stopped. "
                    f"The last good checkpoint is kept in {self.last_dir}"
                )
            state["batch"] += 1
            state["step"] += 1
            losses.append(loss)
            dices.append(dice)
            self.callbacks.on_train_batch_end(state["batch"] - 1, {"loss": loss, "dice": dice})
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", dice=f"{np.mean(dices):.3f}")
            bar.update()
        bar.close()
        return {"loss": float(np.mean(losses)) if losses else float("nan"), "dice": float(np.mean(dices)) if dices else float("nan")}

    def _validate(self):
        if self.val_data is None:
            return {}
        losses, dices = [], []
        for x, y, w in self._batches(self.val_data, 0):
            loss, dice = self._val_step(x, y, w)
            losses.append(float(loss))
            dices.append(float(dice))
        return {"val_loss": float(np.mean(losses)), "val_dice": float(np.mean(dices))}

    @property
    def last_path(self):
        """The model after the last epoch, which may differ from ``best_path`` (lowest validation loss)."""
        return self.run_dir / "last.keras"

    def _save(self, path):
        tmp = path.with_name(f"{path.stem}.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _averaged(self):
        """Inside the block the model holds the moving average of its weights (with
        ``ema_momentum``), after it its raw training weights again."""
        if self.config.ema_momentum is None:
            yield
            return
        variables = self.model.trainable_variables
        raw = [v.numpy() for v in variables]
        self.optimizer.finalize_variable_values(variables)
        try:
            yield
        finally:
            for variable, value in zip(variables, raw):
                variable.assign(value)

    def _checkpoint(self, state):
        if self.chief:
            save_checkpoint(self.last_dir, self.model, self.optimizer, state)

    def fit(self, resume=False):
        """Train for the configured epochs (continuing a checkpoint with ``resume``); returns the history."""
        state = {"epoch": 0, "batch": 0, "step": 0, "best": float("inf"), "history": []}
        if resume:
            found = find_checkpoint(self.last_dir)
            if found is None:
                raise FileNotFoundError(f"--resume: no checkpoint in {self.last_dir}")
            state = load_checkpoint(found, self.model, self.optimizer)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.callbacks.on_train_begin()
        try:
            start = state["epoch"]
            for epoch in range(start, self.config.total_epochs):
                if epoch == self.config.epochs or (epoch == start and epoch > self.config.epochs):
                    self.optimizer.learning_rate = self.config.fine_tune_learning_rate  # fine-tuning phase
                self.callbacks.on_epoch_begin(epoch)
                logs = self._train_epoch(epoch, state)
                if self.strategy.num_replicas_in_sync > 1:
                    self._sync_statistics()
                with self._averaged():
                    logs.update(self._validate())
                    score = logs.get("val_loss", logs["loss"])
                    if score < state["best"] and self.chief:
                        state["best"] = score
                        self._save(self.best_path)
                state.update(epoch=epoch + 1, batch=0)
                state["history"].append({"epoch": epoch + 1, **logs})
                self._checkpoint(state)
                self.callbacks.on_epoch_end(epoch, logs)
                if self.model.stop_training:
                    break
        except KeyboardInterrupt:
            self._checkpoint(state)
            raise TrainingInterrupted(
                f"interrupted at epoch {state['epoch'] + 1}, batch {state['batch']}; "
                f"checkpoint saved in {self.last_dir} (continue with --resume)"
            ) from None
        self.optimizer.finalize_variable_values(self.model.trainable_variables)  # the averaged weights, if any
        if self.chief:
            self._save(self.last_path)
        self.callbacks.on_train_end(state["history"][-1] if state["history"] else {})
        return state["history"]
