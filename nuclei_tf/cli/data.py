"""`nuclei-tf data ...`: inspect datasets and the papers' split protocols."""
import json
from collections import Counter

import click
from tqdm import tqdm

from nuclei_tf.cli.options import data_errors_as_usage, dataset_options, json_option, protocol_option
from nuclei_tf.data import split_protocol


@click.group()
def data():
    """Inspect datasets and split protocols."""


def summarise(splits, progress=True):
    """Per split: number of images, nuclei (ground-truth instances) and images per organ."""
    summary = {}
    for name, records in splits.items():
        nuclei = 0
        for record in tqdm(records, desc=name, disable=not progress, leave=False):
            nuclei += int(record.load_instances().max(initial=0))
        summary[name] = {
            "images": len(records),
            "nuclei": nuclei,
            "organs": dict(sorted(Counter(r.organ for r in records).items())),
        }
    return summary


@data.command()
@dataset_options
@protocol_option()
@json_option
@data_errors_as_usage
def summary(monuseg, tnbc, dsb, data, protocol, seed, as_json):
    """Images, nuclei and organs in every split of a protocol (--data: of your own folder)."""
    protocol = "folder" if data is not None else protocol
    splits = split_protocol(protocol, monuseg=monuseg, tnbc=tnbc, dsb=dsb, seed=seed, data=data)
    table = summarise(splits, progress=not as_json)
    if as_json:
        click.echo(json.dumps({"protocol": protocol, "seed": seed, "splits": table}, indent=2))
        return
    click.echo(f"protocol {protocol} (seed {seed})")
    click.echo(f"{'split':<16}{'images':>8}{'nuclei':>9}  organs")
    for name, row in table.items():
        organs = ", ".join(f"{organ} {n}" for organ, n in row["organs"].items())
        click.echo(f"{name:<16}{row['images']:>8}{row['nuclei']:>9}  {organs}")
