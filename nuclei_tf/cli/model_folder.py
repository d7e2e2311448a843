"""`nuclei-tf upgrade-model`: rewrite an older model folder's config.json in the current format."""
import json
import os
from pathlib import Path

import click

from nuclei_tf.cli.options import data_errors_as_usage


@click.command("upgrade-model")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_errors_as_usage
def upgrade_model(folders):
    """Write out, in each FOLDER's config.json, every setting its format-1 file left to a default
    (the value format-1 readers used) and the smallest nucleus in um^2 (format 3), printing each;
    folders already in the current format are left as they are."""
    from nuclei_tf.data.errors import DataError
    from nuclei_tf.inference.folder_config import FORMAT, check_config, read_folder_config, read_json_object, upgrade_config

    for folder in folders:
        path = folder / "config.json"
        if not path.is_file():
            raise DataError(path, "not found: not a model folder")
        config = read_json_object(path)
        version = check_config(config, path)
        if version == FORMAT:
            click.echo(f"{path}: already format {FORMAT}")
            continue
        upgraded, filled = upgrade_config(config, markers=_marker_head(folder, config))
        partial = path.with_name("config.json.partial")
        partial.write_text(json.dumps(upgraded, indent=2) + "\n")
        try:
            read_folder_config(partial)
        except DataError:
            partial.unlink()
            raise
        os.replace(partial, path)
        stated = "; ".join(f"{key} = {json.dumps(value)}" for key, value in filled) or "none was missing"
        click.echo(f"{path}: format {version} -> {FORMAT}; written out: {stated}")


def _marker_head(folder, config):
    """Whether the folder's model has a marker head, three-class or hv (needed only when the split is unstated)."""
    if "split" in config.get("postprocess", {}):
        return False
    from nuclei_tf.models.heads import MARKER_HEADS, model_head
    from nuclei_tf.models.saving import load_model

    return model_head(load_model(folder / "model.keras")) in MARKER_HEADS
