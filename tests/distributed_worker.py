"""One worker of the 2-worker MultiWorkerMirroredStrategy test (run by test_distributed.py).

    python distributed_worker.py DATA_FOLDER RUN_DIR OUT.npz     (TF_CONFIG set by the caller)
"""
import sys

import numpy as np

from nuclei_tf.data import InstanceFolder
from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare
from nuclei_tf.models import build_model
from nuclei_tf.train.trainer import TrainConfig, Trainer


def main(data_folder, run_dir, out):
    config = PipelineConfig(tile=16, overlap=0.5, batch_size=4)
    prepared = prepare(InstanceFolder(data_folder).records(), config)
    trainer = Trainer(
        lambda: build_model("unet_plus", base_filters=4, depth=3),
        TrainingPipeline(prepared, config),
        None,
        TrainConfig(epochs=1, steps_per_epoch=3, learning_rate=1e-2),
        run_dir,
        verbose=False,
    )
    assert trainer.strategy.num_replicas_in_sync == 2, trainer.strategy
    trainer.fit()
    np.savez(out, **{f"{i}:{w.path}": w.numpy() for i, w in enumerate(trainer.model.weights)})


if __name__ == "__main__":
    main(*sys.argv[1:])
