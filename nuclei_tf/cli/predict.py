"""`nuclei-tf predict`, `nuclei-tf demo` and `nuclei-tf export`: use a trained model."""
from pathlib import Path

import click

from nuclei_tf.cli.options import data_errors_as_usage

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "breast_sample.png"

model_option = click.option(
    "--model", "model_path", type=click.Path(exists=True, path_type=Path),
    help="Model folder (model.keras + config.json) or .keras file; default: the shipped model.",
)


def run_prediction(images, out_dir, model_path=None, batch_size=8):
    """Segment each image and write its outputs; returns the output paths per image."""
    from nuclei_tf.data.io import read_image
    from nuclei_tf.inference import load_bundle, segment
    from nuclei_tf.inference.outputs import write_outputs

    bundle = load_bundle(model_path)
    written = {}
    for path in images:
        image = read_image(path)
        large = image.shape[0] * image.shape[1] > 4 * bundle.tile**2
        _, instances = segment(bundle, image, batch_size=batch_size, progress=large)
        written[path] = write_outputs(image, instances, Path(out_dir), Path(path).stem)
        click.echo(f"{path}: {int(instances.max())} nuclei -> {written[path]['labels'].parent}")
    return written


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@model_option
@click.option("--batch-size", type=int, default=8, show_default=True, help="Tiles per model call.")
@data_errors_as_usage
def predict(images, out_dir, model_path, batch_size):
    """Segment nuclei in IMAGES of any size: <stem>.labels.tif, .overlay.png, .geojson, .csv."""
    run_prediction(images, out_dir, model_path, batch_size)


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"), show_default=True)
@model_option
@data_errors_as_usage
def demo(out_dir, model_path):
    """Segment the sample H&E image shipped with the package with the shipped model."""
    run_prediction([SAMPLE], out_dir, model_path)


@click.command()
@click.argument("model_path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model base folder for TF Serving.")
@click.option("--version", type=int, help="Version sub-folder (default: next free integer).")
def export(model_path, out_dir, version):
    """Export MODEL as a TF Serving SavedModel (OUT/<version>/, uint8 images of any size in)."""
    from nuclei_tf.inference import load_bundle
    from nuclei_tf.inference.export import export_saved_model

    try:
        target = export_saved_model(load_bundle(model_path).model, out_dir, version)
    except (FileExistsError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"SavedModel written to {target} (signature serving_default: uint8 images -> probabilities)")
