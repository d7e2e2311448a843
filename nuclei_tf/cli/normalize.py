"""`nuclei-tf normalize`: stain-normalise H&E images to the colours of a reference image."""
from collections import Counter
from pathlib import Path

import click

from nuclei_tf.cli.options import data_errors_as_usage
from nuclei_tf.preprocess.macenko import BackgroundError
from nuclei_tf.preprocess.stain import BACKENDS, METHODS


@click.command()
@click.argument("inputs", metavar="IN...", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--reference", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Image whose stain colours the inputs are mapped to.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the normalised images, <stem>.png each.")
@click.option("--method", type=click.Choice(METHODS), default="macenko", show_default=True,
              help="Normalisation method.")
@click.option("--backend", type=click.Choice(BACKENDS), default="numpy", show_default=True,
              help="numpy (ours, Macenko only) or staintools.")
@data_errors_as_usage
def normalize(inputs, reference, out, method, backend):
    """Stain-normalise H&E images (IN...) to a reference image, writing OUT/<stem>.png."""
    from PIL import Image

    from nuclei_tf.data.io import read_image
    from nuclei_tf.preprocess.stain import stain_normalizer

    repeated = sorted(stem for stem, n in Counter(path.stem for path in inputs).items() if n > 1)
    if repeated:
        raise click.UsageError(f"inputs share a file stem, their outputs would collide: {', '.join(repeated)}")
    try:
        normalizer = stain_normalizer(method, backend).fit(read_image(reference))
    except BackgroundError as exc:
        raise click.BadParameter(f"{reference}: {exc}", param_hint="--reference") from None
    out.mkdir(parents=True, exist_ok=True)
    for path in inputs:
        Image.fromarray(normalizer.transform(read_image(path))).save(out / f"{path.stem}.png")
    click.echo(f"{len(inputs)} image(s) normalised ({method}, {backend}) to {reference.name}, written to {out}")
