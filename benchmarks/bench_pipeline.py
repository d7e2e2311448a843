"""Input pipeline vs model: samples/s the tf.data pipeline produces (augmented 256 px tiles
with weight maps) against samples/s one U-Net+ (B = 16) training step consumes, same CPU,
same run. The pipeline must be >= 5x faster so that the model sets the pace.

    python benchmarks/bench_pipeline.py [--data ../shared/data] [--images 4] [--batches 20]
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402
from nuclei_tf.data import MoNuSeg  # noqa: E402
from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare  # noqa: E402
from nuclei_tf.models import build_model  # noqa: E402
from nuclei_tf.train.trainer import TrainConfig, Trainer  # noqa: E402


def samples_per_second(batches, batch_size, consume):
    """Time ``consume`` over ``batches`` after one warm-up batch."""
    iterator = iter(batches)
    consume(next(iterator))
    count, start = 0, time.perf_counter()
    for batch in iterator:
        consume(batch)
        count += batch_size
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(describe())
    config = PipelineConfig(tile=256, overlap=0.1, batch_size=8)
    prepared = prepare(MoNuSeg(Path(args.data) / "MoNuSeg").train()[: args.images], config)
    pipeline = TrainingPipeline(prepared, config)
    produced = samples_per_second(pipeline.dataset(0).take(args.batches + 1), 8, lambda batch: None)
    trainer = Trainer(lambda: build_model("unet_plus", base_filters=16, depth=5), pipeline, None,
                      TrainConfig(epochs=1), "/tmp/bench_pipeline_run", verbose=False)
    batches = list(pipeline.dataset(1).take(args.batches // 2 + 1))
    consumed = samples_per_second(batches, 8, lambda batch: trainer._train_step(*batch)[0].numpy())
    print(f"pipeline (augmentation + weight maps, 256 px, batch 8): {produced:.1f} samples/s")
    print(f"U-Net+ B=16 training step (float32):                   {consumed:.1f} samples/s")
    print(f"ratio pipeline / model: {produced / consumed:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
