"""`nuclei-tf calibrate`, `predict`, `demo` and `export`: turn a trained model into a product and use it."""
import sys
from pathlib import Path

import click

from nuclei_tf.cli.options import (data_errors_as_usage, dataset_options, model_option, prediction_options, protocol_option,
                                   tta_option, writable_folder)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "breast_sample.png"

def run_prediction(images, out_dir, model_path=None, batch_size=8, mpp=None, roi=None, tissue=True, overlay=None, tta=False,
                   precision=None, min_area=None):
    """Segment each image and write its outputs, streamed strip by strip (whole slides fit in
    bounded memory); returns the output paths per image. Each input goes through
    :func:`~nuclei_tf.inference.predict_file.predict_file` (whole slides, and images given ``mpp``
    or ``roi`` or recording a resolution other than the model's, at the model's resolution).
    ``min_area``: the smallest nucleus kept in um^2, in place of the model folder's."""
    from tqdm import tqdm

    from nuclei_tf.data.slide import open_slide
    from nuclei_tf.inference.outputs import SLIDE_SUFFIXES, output_paths
    from nuclei_tf.inference.predict_file import check_size, plain_pixels, predict_file
    from nuclei_tf.inference.sources import read_ahead
    from nuclei_tf.inference.wsi import stop_message

    refuse_shared_stems(images)
    writable_folder(out_dir)
    for path in images:  # every input readable and large enough, and no output name a folder, before the model is loaded
        output_paths(out_dir, Path(path).stem, SLIDE_SUFFIXES)
        with open_slide(path) as slide:
            check_size(slide)
    bundle = load_model_for_prediction(model_path, precision, tta, min_area)
    written, nuclei = {}, 0
    with tqdm(total=len(images), desc="images", unit="image", disable=len(images) < 2) as bar:
        say = bar.write if len(images) > 1 else click.echo
        for path, plain in read_ahead(images, lambda p: plain_pixels(bundle, p, mpp, roi)):
            try:
                prediction = predict_file(bundle, path, out_dir, plain, mpp=mpp, roi=roi, tissue=tissue, overlay=overlay,
                                          batch_size=batch_size, model_name=model_path or "shipped", echo=click.echo)
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM: an image leaves no partial file, a slide its finished strips
                done = ", ".join(str(p) for p in written) or "none"
                kept = (stop_message(out_dir, Path(path).stem) if plain is None
                        else f"its outputs were not written (finished: {done})")
                click.echo(f"\ninterrupted while predicting {path}: {kept}", err=True)
                sys.exit(130)
            written[path] = prediction.paths
            nuclei += prediction.nuclei
            say(f"{path}: {prediction.nuclei} nuclei -> {prediction.paths['labels'].parent}")
            bar.set_postfix(nuclei=nuclei, refresh=False)
            bar.update()
    return written


def load_model_for_prediction(model_path, precision, tta, min_area):
    """The model bundle ``predict`` runs: ``--tta`` and ``--min-area`` applied, its post-processing said."""
    from nuclei_tf.inference import load_bundle

    bundle = load_bundle(model_path, precision=precision)
    bundle.tta = bundle.tta or tta
    if min_area is not None:
        try:
            bundle.keep_nuclei_from(min_area)
        except ValueError as exc:
            raise click.BadParameter(f"{model_path or 'the model'}: {exc}", param_hint="--min-area") from None
    click.echo(f"model {model_path or 'shipped'}: {bundle.postprocess_summary()}", err=True)
    return bundle


def refuse_shared_stems(images):
    """Outputs are named by the input's stem: two inputs with one stem would overwrite each other."""
    seen = {}
    for path in images:
        stem = Path(path).stem
        if stem in seen:
            raise click.UsageError(f"{seen[stem]} and {path} would both write {stem}.* in the output folder; "
                                   "rename one or predict them into different --out folders")
        seen[stem] = path


def parse_roi(ctx, param, value):
    """--roi X,Y,W,H as four integers (level-0 pixels)."""
    if value is None:
        return None
    try:
        x, y, w, h = (int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected X,Y,W,H (four integers, level-0 pixels), got {value!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise click.BadParameter(f"X and Y must be >= 0 and W, H > 0, got {value!r}")
    return x, y, w, h


@click.command()
@click.argument("images", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--from-list", "list_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A text file of inputs, one path a line (# comments; relative to the file's folder).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--roi", callback=parse_roi, help="X,Y,W,H: predict only this region (level-0 pixels).")
@prediction_options
@data_errors_as_usage
def predict(images, list_file, out_dir, roi, model_path, batch_size, mpp, tissue, overlay, min_area, tta, precision):
    """Segment nuclei in IMAGES or whole slides (SVS, NDPI, MRXS, SCN, tiled TIFF...), or in every such
    file under a folder (recursive): <stem>.labels.tif, .geojson (QuPath detections), .csv,
    .overlay.png; a stopped slide run continues when run again."""
    from nuclei_tf.inference.inputs import expand_inputs

    if not images and list_file is None:
        raise click.UsageError("give IMAGES (files or folders) or --from-list FILE")
    run_prediction(expand_inputs(images, list_file), out_dir, model_path, batch_size, mpp, roi, tissue, overlay, tta,
                   precision, min_area)


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-output"), show_default=True)
@model_option
@data_errors_as_usage
def demo(out_dir, model_path):
    """Segment the sample H&E image shipped with the package with the shipped model."""
    run_prediction([SAMPLE], out_dir, model_path)


@click.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model base folder for TF Serving.")
@click.option("--version", type=click.IntRange(min=1), help="Version sub-folder (default: next free integer).")
@data_errors_as_usage
def export(model_path, out_dir, version):
    """Export MODEL (a model folder, .keras file or shipped model name) as a TF Serving SavedModel (OUT/<version>/, uint8 images of any size in)."""
    from nuclei_tf.inference import load_bundle
    from nuclei_tf.inference.export import export_saved_model

    bundle = load_bundle(model_path, precision="float32")  # the SavedModel computes in float32
    writable_folder(out_dir)  # a read-only or immutable folder: one line, before the SavedModel is traced
    target = export_saved_model(bundle.model, out_dir, version)
    click.echo(f"SavedModel written to {target} (signature serving_default: uint8 images -> probabilities)")
    if bundle.clahe_tv:
        click.echo("note: this model was trained on CLAHE + TV images (Long 2020), which the SavedModel does not "
                   "compute: send round(255 * nuclei_tf.preprocess.clahe_tv(image)) as uint8")


def _sizes(ctx, param, value):
    """``--min-marker-sizes`` "1,20,40" -> (1, 20, 40); each a whole number of pixels >= 0."""
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 0:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of whole pixel counts >= 0")
    return sizes


def _areas(ctx, param, value):
    """``--min-area`` "3" or "0.625,2.5,5" -> areas in um^2, each a number >= 0."""
    if value is None:
        return None
    try:
        areas = tuple(float(v) for v in value.split(","))
    except ValueError:
        areas = ()
    if not areas or not all(a >= 0 for a in areas):  # NaN fails too
        raise click.BadParameter(f"{value!r} is not an area in um^2 (or a comma-separated list of them) >= 0")
    return areas


def starting_gain_limit(trained):
    """A fine-tuned run's Macenko gain caps: those of the model folder it started from (chosen on
    that model's whole training split; recomputed on the 3 TNBC images of
    ``examples/fine_tune_tnbc.py`` they loosened to 3.2 / 2.1 and AJI on 27 unseen images fell
    0.571 -> 0.555), or None for a run trained from scratch or from a folder without caps."""
    if not trained.get("start_from"):
        return None
    from nuclei_tf.inference.shipped import resolve_model
    from nuclei_tf.inference.folder_config import read_folder_config

    folder = resolve_model(trained["start_from"])
    return read_folder_config(folder / "config.json")["stain_max_gain"] if folder.is_dir() else None


def calibration_data(trained, protocol, seed, data):
    """``(protocol, seed, data)`` calibration runs on: as given, else the run's own (its config.yaml:
    a run on your own folder calibrates on its validation images with no option), else lagree2021, 0."""
    from nuclei_tf.data.folder import describe_folder

    if data is not None:
        if protocol not in (None, "folder"):
            raise click.UsageError(f"--data calibrates on your own folder (protocol folder), not --protocol {protocol}")
        recorded = trained.get("dataset") or {}
        same = recorded.get("root") is not None and Path(recorded["root"]).resolve() == Path(data).resolve()
        return "folder", seed if seed is not None else trained.get("seed", 0), recorded if same else describe_folder(data)
    protocol = protocol or trained.get("protocol") or "lagree2021"
    seed = seed if seed is not None else trained.get("seed", 0)
    return protocol, seed, trained.get("dataset") if protocol == "folder" else None


def _metrics(ctx, param, value):
    """``--metric`` "aji,pq" -> ("aji", "pq"), each a validation metric name."""
    from nuclei_tf.postprocess.search import check_metric

    metrics = tuple(dict.fromkeys(v.strip() for v in value.split(",")))
    try:
        return tuple(check_metric(m) for m in metrics)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@dataset_options
@protocol_option(default=None)
@click.option("--metric", "metrics", default="aji", show_default=True, callback=_metrics,
              help="Validation metric to maximise (e.g. aji, pq, f1@0.5); several, comma-separated, are chosen in one "
                   "search and each written to OUT/<metric>/.")
@click.option("--overlap", type=float, default=0.5, show_default=True, help="Tile overlap at inference (Lagree: 50%).")
@click.option("--tiling", type=click.Choice(["blend", "margin"]), default="blend", show_default=True,
              help="blend: training-size tiles, --overlap, blended; margin: tiles as large as --tile-memory allows, whose "
                   "measured receptive-field margin is discarded (each pixel computed once, equal to the untiled model).")
@click.option("--tile-memory", type=click.IntRange(min=16), default=320, show_default=True,
              help="--tiling margin: MiB of model activations one tile may take (measured on the model at the "
                   "precision it runs at here); sets the tile size.")
@click.option("--min-area", "min_areas", callback=_areas, help="Also choose the smallest nucleus kept among these areas "
              "(um^2, comma-separated, e.g. 0.625,2.5,5,7.5,10: 10-160 px at 0.25 um/px); default: 10 px of the "
              "model's resolution only.")
@click.option("--min-marker-sizes", callback=_sizes, help="Three-class models: also choose the smallest marker "
              "(px, comma-separated, e.g. 1,10,20,40); a smaller interior speck seeds no split and vouches for no "
              "nucleus. Default: 1 only.")
@click.option("--stain-gain-limit/--no-stain-gain-limit", default=True, show_default=True,
              help="Macenko models: cap each stain's normalisation gain at the largest one on the training split, "
                   "so that faint tissue with few nuclei is not amplified into false nuclei (a fine-tuned run: "
                   "the caps of the model folder it started from).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model folder to write.")
@tta_option
@data_errors_as_usage
def calibrate(model_path, monuseg, tnbc, dsb, data, protocol, seed, metrics, overlap, tiling, tile_memory, min_areas,
              min_marker_sizes, stain_gain_limit, out_dir, tta):
    """Choose threshold and watershed splitting (three-class models: threshold, marker threshold and
    whether a nucleus needs a marker) on the validation split; write a model folder (one per metric)."""
    import yaml

    from nuclei_tf.data import split_protocol
    from nuclei_tf.data.protocols import training_mpp
    from nuclei_tf.inference import ModelBundle, save_bundle
    from nuclei_tf.inference.calibrate import calibrate as search
    from nuclei_tf.inference.calibrate import setting_key
    from nuclei_tf.inference.calibrate import stain_gain_limit as gain_limit
    from nuclei_tf.inference.folder_config import pixels_of_area
    from nuclei_tf.models import load_model
    from nuclei_tf.models.heads import MARKER_HEADS, model_head

    model = load_model(model_path)
    if min_marker_sizes and model_head(model) not in MARKER_HEADS:
        raise click.BadParameter(f"{model_path} has no three-class or hv head, so it has no markers",
                                 param_hint="--min-marker-sizes")
    writable_folder(out_dir)
    run_config = model_path.with_name("config.yaml")
    trained = yaml.safe_load(run_config.read_text()) if run_config.is_file() else {}
    stain = "percentile" if trained.get("data", {}).get("normalize") == "percentile" else \
        trained.get("preprocess", {}).get("stain", "none")
    tile = trained.get("data", {}).get("tile", 256)
    protocol, seed, data = calibration_data(trained, protocol, seed, data)
    bundle = ModelBundle(model, stain=stain, tile=tile, overlap=overlap, mpp=training_mpp(protocol, data), tta=tta)
    if min_areas and bundle.mpp is None:
        raise click.BadParameter(f"protocol {protocol}'s images have no known resolution, so a nucleus area in um^2 has "
                                 "no pixel size", param_hint="--min-area")
    min_sizes = tuple(dict.fromkeys(pixels_of_area(a, bundle.mpp) for a in min_areas)) if min_areas else None
    calibration = {}
    if tiling == "margin":
        from nuclei_tf.inference.precision import runnable_precision
        from nuclei_tf.inference.tile_budget import activation_bytes_per_pixel, margin_tile
        from nuclei_tf.models.receptive_field import inference_margin, input_multiple

        runs_at = runnable_precision(bundle.precision)
        per_pixel = round(activation_bytes_per_pixel(model_path, runs_at), 1)  # the recorded figure gives the tile
        bundle.margin = inference_margin(bundle.model)
        bundle.tile = margin_tile(per_pixel, bundle.margin, input_multiple(bundle.model), tile_memory)
        calibration["tile"] = {"memory_mib": tile_memory, "bytes_per_pixel": per_pixel, "precision": runs_at}
        click.echo(f"margin tiles of {bundle.tile} px ({per_pixel:.0f} B/px of activations at {runs_at}, "
                   f"{tile_memory} MiB budget), {bundle.margin} px margin")
    splits = split_protocol(protocol, monuseg=monuseg, tnbc=tnbc, dsb=dsb, seed=seed, data=data)
    validation = splits["val"]
    started = starting_gain_limit(trained)
    if stain_gain_limit and started is not None:
        bundle.stain_max_gain = started
        calibration["stain_max_gain"] = {"from": trained["start_from"]}
    elif stain_gain_limit and bundle.stain.startswith("macenko"):
        bundle.stain_max_gain = gain_limit(bundle, splits["train"])
        calibration["stain_max_gain"] = {"split": "train", "images": len(splits["train"])}
    chosen = search(bundle, validation, metrics=metrics, min_sizes=min_sizes, min_marker_sizes=min_marker_sizes)
    capped = f"; Macenko gains capped at {bundle.stain_max_gain} (H, E)" if bundle.stain_max_gain else ""
    for metric, (settings, table) in chosen.items():
        bundle.postprocess, best = settings, table[setting_key(settings, bundle.mpp)]
        bundle.info = {"arch": trained.get("arch"), "protocol": protocol, "seed": seed, "trained_with": trained,
                       "calibration": {**calibration, "split": "val", "images": len(validation), "metric": metric,
                                       "score": best, "table": table}}
        folder = out_dir if len(metrics) == 1 else out_dir / metric
        save_bundle(bundle, folder)
        click.echo(f"{folder}: {bundle.postprocess_summary()} (validation {metric} {best:.4f} on {len(validation)} images{capped})")
