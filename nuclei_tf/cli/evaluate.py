"""`nuclei-tf evaluate` and `nuclei-tf baseline`: score a method on a protocol's test sets."""
from pathlib import Path

import click

from nuclei_tf.cli.options import (data_errors_as_usage, dataset_options, precision_option, protocol_option, tta_option,
                                   writable_folder)
from nuclei_tf.data import split_protocol

TRAINING_SPLITS = ("train", "val")


def _run(predictor, method, monuseg, tnbc, dsb, data, protocol, seed, out, save_predictions, splits=None):
    """Shared body of both commands: evaluate on the test sets (or ``splits``) and write the reports
    (``data``: your own folder, protocol folder)."""
    from nuclei_tf.evaluation import evaluate_splits, write_reports
    from nuclei_tf.evaluation.runner import EXTRA_SCORES

    writable_folder(out)
    protocol = "folder" if data is not None else protocol
    every_split = split_protocol(protocol, monuseg=monuseg, tnbc=tnbc, dsb=dsb, seed=seed, data=data)
    chosen = splits or [name for name in every_split if name not in TRAINING_SPLITS]
    unknown = sorted(set(chosen) - set(every_split))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} not in protocol {protocol} ({', '.join(every_split)})", param_hint="--split")
    rows, summaries = evaluate_splits(
        {name: every_split[name] for name in chosen},
        predictor,
        save_dir=(out / "predictions") if save_predictions else None,
        extra_scores=EXTRA_SCORES.get(protocol),
    )
    title = f"{method} on {protocol}"
    write_reports(rows, summaries, out, title, {"method": method, "protocol": protocol, "seed": seed})
    click.echo((out / "summary.md").read_text())
    click.echo(f"reports written to {out}")


def _common(func):
    func = click.option("--split", "splits", multiple=True, help="Evaluate these splits (default: the test sets).")(func)
    func = click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
                        help="Folder for per_image.csv, summary.md/.json, ap_vs_iou.png.")(func)
    func = protocol_option()(func)
    return dataset_options(func)


@click.command()
@click.option("--predictions", type=click.Path(exists=True, file_okay=False), help="Folder of predicted instance maps: <split>/<id>.tif|png or <id>.tif|png.")
@click.option("--baseline", type=click.Choice(["otsu", "watershed", "fiji"]), help="Evaluate a classical baseline instead.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), help="Evaluate a model folder, .keras file or shipped model name instead.")
@click.option("--save-predictions", is_flag=True, help="Also write the instance maps under OUT/predictions.")
@tta_option
@precision_option
@_common
@data_errors_as_usage
def evaluate(predictions, baseline, model_path, save_predictions, tta, precision, monuseg, tnbc, dsb, data, protocol, seed, out,
             splits):
    """Score predicted instance maps (or a baseline, or a model) against a protocol's test sets."""
    from nuclei_tf.evaluation import baseline_predictor, folder_predictor, model_predictor

    if sum(x is not None for x in (predictions, baseline, model_path)) != 1:
        raise click.UsageError("give exactly one of --predictions DIR, --baseline NAME or --model PATH")
    if predictions is not None:
        predictor, method = folder_predictor(predictions), f"predictions in {predictions}"
    elif baseline is not None:
        predictor, method = baseline_predictor(baseline), baseline
    else:
        from nuclei_tf.inference import load_bundle

        bundle = load_bundle(model_path, precision=precision)
        bundle.tta = bundle.tta or tta
        extras = [name for name, on in (("TTA", bundle.tta), (bundle.runs_at, bundle.runs_at != "float32")) if on]
        predictor, method = model_predictor(bundle), f"model {model_path}{' with ' + ' and '.join(extras) if extras else ''}"
    _run(predictor, method, monuseg, tnbc, dsb, data, protocol, seed, out, save_predictions, splits)


@click.command()
@click.option("--method", type=click.Choice(["otsu", "watershed", "fiji"]), required=True, help="Lagree et al. 2021 Table 2a baseline.")
@click.option("--save-predictions/--no-save-predictions", default=True, show_default=True, help="Also write the instance maps under OUT/predictions.")
@_common
@data_errors_as_usage
def baseline(method, save_predictions, monuseg, tnbc, dsb, data, protocol, seed, out, splits):
    """Run a classical baseline on a protocol's test sets and evaluate it."""
    from nuclei_tf.evaluation import baseline_predictor

    _run(baseline_predictor(method), method, monuseg, tnbc, dsb, data, protocol, seed, out, save_predictions, splits)
