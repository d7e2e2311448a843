"""`nuclei-tf import-annotations`: QuPath GeoJSON annotations -> ROOT/images + ROOT/labels training tiles."""
from pathlib import Path

import click

from nuclei_tf.cli.options import data_errors_as_usage, writable_folder


@click.command("import-annotations")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("geojson", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "root", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder (ROOT/images, ROOT/labels, classes.csv, dataset.json); several images may share it.")
@click.option("--model", "model_path", help="Write the tiles at this model folder's resolution (default: the shipped model's).")
@click.option("--to-mpp", type=click.FloatRange(0.05, 20), help="Write the tiles at this resolution instead (um/px).")
@click.option("--mpp", type=click.FloatRange(0.05, 20), help="Microns per pixel of IMAGE's level 0 (overrides what the file records).")
@click.option("--tile", type=click.IntRange(min=32), default=512, show_default=True, help="Tile side (px at the output resolution).")
@click.option("--region-class", default="Region", show_default=True,
              help="Classification (or name) of the annotations that outline the fully annotated areas.")
@click.option("--class", "classes", multiple=True, help="Keep only nuclei of this classification (repeatable; default: all).")
@data_errors_as_usage
def import_annotations(image, geojson, root, model_path, to_mpp, mpp, tile, region_class, classes):
    """Turn QuPath annotations of IMAGE (an image or a whole slide; GEOJSON from File > Export objects
    as GeoJSON, full-resolution pixel coordinates) into training tiles for `nuclei-tf fit --data ROOT`:
    each nucleus polygon (holes, MultiPolygons) rasterised by the pixel-centre rule at the model's
    resolution, inside the annotations classified --region-class."""
    from nuclei_tf.data.annotated_tiles import export_annotated_tiles

    if to_mpp is None:
        to_mpp = model_mpp(model_path)
    writable_folder(root)
    summary = export_annotated_tiles(image, geojson, root, to_mpp, image_mpp=mpp, tile=tile, region_class=region_class,
                                     classes=set(classes) or None)
    skipped = "".join(f"; {n} {kind} feature(s) skipped (no area)" for kind, n in summary["skipped"].items())
    left_out = f"; {summary['left_out_by_class']} polygon(s) of other classes left out" if summary["left_out_by_class"] else ""
    click.echo(f"{image}: {summary['nuclei']} nuclei in {summary['tiles']} tiles of {summary['regions']} region(s) at "
               f"{to_mpp} um/px -> {root}{left_out}{skipped}")
    if summary["nuclei_annotations"] == 0:
        raise click.ClickException(f"{geojson}: no nucleus polygon to import (check --class and --region-class)")


def model_mpp(model_path):
    """The resolution a model folder (default: the shipped one) works at, read from its config.json."""
    from nuclei_tf.data.errors import DataError
    from nuclei_tf.inference.shipped import resolve_model
    from nuclei_tf.inference.folder_config import read_folder_config

    folder = resolve_model(model_path)
    mpp = read_folder_config(folder / "config.json")["mpp"] if folder.is_dir() else None
    if mpp is None:
        raise DataError(folder, "records no resolution ('mpp'): pass --to-mpp")
    return mpp
