"""Choosing a tf.distribute strategy: several machines from ``TF_CONFIG``
(MultiWorkerMirroredStrategy), several local GPUs (MirroredStrategy), else the default."""
import json
import os

import tensorflow as tf


def select_strategy():
    """The strategy the environment asks for (see module docstring)."""
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if sum(len(v) for v in cluster.values()) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """True on the worker that writes checkpoints and logs (worker 0, or the only one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)
