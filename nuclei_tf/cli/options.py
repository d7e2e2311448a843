"""Option decorators shared by every sub-command (one definition, many commands)."""
import errno
import functools
import os

from pathlib import Path

import click

from nuclei_tf.data.protocols import PROTOCOLS

_PATH = click.Path(exists=True, file_okay=False, dir_okay=True)


def dataset_options(func):
    """--monuseg, --tnbc, --dsb and --data: the dataset roots a protocol may need (--data: protocol folder)."""
    for option in reversed(
        [
            click.option("--monuseg", type=_PATH, help="MoNuSeg 2018 root (holds 'MoNuSeg 2018 Training Data', 'MoNuSegTestData')."),
            click.option("--tnbc", type=_PATH, help="TNBC root (holds 'Slide_XX'/'GT_XX', or 'TNBC_NucleiSegmentation')."),
            click.option("--dsb", type=_PATH, help="DSB-2018 stage-1 download (holds 'stage1_train/', 'stage1_test/' "
                         "and their CSVs), or one stage folder ('<id>/images'; labels from '<id>/masks' or the CSV)."),
            click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
                         help="Your own annotations (protocol folder): ROOT/images + ROOT/labels (same stems), optional "
                              "ROOT/val/, ROOT/test/ and ROOT/dataset.json (README, Your own data)."),
        ]
    ):
        func = option(func)
    return func


def protocol_option(default="lagree2021"):
    """--protocol NAME (choices: the registered protocols) and --seed N; ``default=None`` leaves it to a config."""

    def decorate(func):
        seed = 0 if default is not None else None
        func = click.option("--seed", type=int, default=seed, show_default=seed is not None, help="Seed of the split (and of training).")(func)
        return click.option(
            "--protocol",
            type=click.Choice(sorted(PROTOCOLS)),
            default=default,
            show_default=default is not None,
            help="Split protocol of a paper.",
        )(func)

    return decorate


def tta_option(func):
    """--tta: test-time augmentation (the mean over the 8 flips and rotations of every tile; 8x the model time)."""
    return click.option("--tta", is_flag=True, help="Test-time augmentation: average the 8 flips/rotations of each tile (8x slower).")(func)


def min_area_option(func):
    """--min-area UM2: the smallest nucleus kept, in um^2 (turned into whole pixels at the model's resolution)."""

    def check(ctx, param, value):
        if value is not None and not value >= 0:
            raise click.BadParameter(f"{value} is not an area >= 0 um^2", param_hint="--min-area")
        return value

    return click.option("--min-area", type=float, callback=check, metavar="UM2",
                        help="Smallest nucleus kept, in um^2 (default: the model folder's; e.g. 3 drops "
                             "detections under 48 px at 0.25 um/px).")(func)


#: the choices of --precision (:data:`nuclei_tf.inference.precision.INFERENCE_PRECISIONS`, kept
#: here so that importing the CLI does not load TensorFlow; a test keeps them equal)
PRECISIONS = ("auto", "float32", "bfloat16")


def precision_option(func):
    """--precision: float32, or bfloat16 where the hardware runs it natively (checked before any work)."""

    def check(ctx, param, value):
        from nuclei_tf.inference.precision import bfloat16_hardware

        if value == "bfloat16" and not bfloat16_hardware():
            raise click.BadParameter("bfloat16 needs a GPU or a CPU with AVX512-BF16 or AMX instructions; this machine "
                                     "has neither (it would be emulated and slower)", param_hint="--precision")
        return value

    return click.option("--precision", type=click.Choice(PRECISIONS), callback=check,
                        help="Model arithmetic (default: the model folder's, else auto: bfloat16 on CPUs with AVX512-BF16/AMX, "
                             "1.5x faster, AJI -0.0003; float32 elsewhere). See README, Performance.")(func)


def json_option(func):
    """--json: machine-readable output instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)


def data_errors_as_usage(func):
    """Turn a DataError, ValueError or OSError (full disk, unwritable folder, missing file) into
    one click error line naming the file instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        except MemoryError:
            raise click.ClickException("out of memory; for very large images use a tiled pyramidal slide format "
                                       "(read region by region) or a machine with more memory") from None
        except OSError as exc:
            raise click.ClickException(os_error_line(exc)) from None

    return wrapper


def os_error_line(exc):
    """``<file>: <reason>`` of an OSError, with what to do for a full disk or a read-only folder."""
    if exc.filename is None:
        return str(exc)
    hint = {errno.ENOSPC: "; the disk is full: free space or choose another --out",
            errno.EACCES: "; no permission to write there: choose another --out",
            errno.EPERM: "; the operation is not permitted there (an immutable folder?): choose another --out",
            errno.EROFS: "; the file system is read-only: choose another --out"}.get(exc.errno, "")
    return f"{exc.filename}: {exc.strerror or exc}{hint}"


def writable_folder(folder):
    """Create ``folder`` (and parents) and check a file can be written in it, before any work."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".nuclei-tf-write-check-{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(folder)) from None
    probe.unlink()
    return folder


model_option = click.option(
    "--model", "model_path", type=click.Path(path_type=Path),
    help="Model folder (model.keras + config.json), .keras file or shipped model name (e.g. lagree2021_ensemble_cpu); "
         "default: the shipped unet_plus_b16.",
)


def _microscope_mpp(ctx, param, value):
    if value is not None and not 0.05 <= value <= 20:
        raise click.BadParameter(f"{value} um/px is not a microscope resolution (expected 0.05-20)", param_hint="--mpp")
    return value


def prediction_options(func):
    """What ``predict`` and ``cohort`` segment each input with: --model, --batch-size, --mpp,
    --tissue/--no-tissue, --overlay/--no-overlay, --min-area, --tta and --precision."""
    for option in reversed([
        model_option,
        click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Tiles per model call."),
        click.option("--mpp", type=float, callback=_microscope_mpp,
                     help="Microns per pixel of the slide's level 0 (overrides what the file records)."),
        click.option("--tissue/--no-tissue", default=True, show_default=True, help="Skip tiles without tissue (whole slides)."),
        click.option("--overlay/--no-overlay", default=None, help="Write <stem>.overlay.png (default: for regions up to 100 Mpx)."),
        min_area_option, tta_option, precision_option,
    ]):
        func = option(func)
    return func
