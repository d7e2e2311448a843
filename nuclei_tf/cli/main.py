"""`nuclei-tf` entry point: a click group whose sub-commands are imported lazily.

Importing TensorFlow takes seconds, so each sub-command lives in its own module and
is imported only when it is invoked; `nuclei-tf --help` stays instant.
"""
import importlib
import logging
import os
import signal
import sys
import threading
import warnings

import click

from nuclei_tf import __version__
from nuclei_tf.cli.allocator import tune_allocator
from nuclei_tf.cli.tensorflow_setup import TENSORFLOW_COMMANDS, start_tensorflow

#: command name -> "module:attribute" of the click command implementing it.
COMMANDS = {
    "data": "nuclei_tf.cli.data:data",
    "baseline": "nuclei_tf.cli.evaluate:baseline",
    "calibrate": "nuclei_tf.cli.predict:calibrate",
    "cohort": "nuclei_tf.cli.cohort:cohort",
    "demo": "nuclei_tf.cli.predict:demo",
    "evaluate": "nuclei_tf.cli.evaluate:evaluate",
    "export": "nuclei_tf.cli.predict:export",
    "fit": "nuclei_tf.cli.fit:fit",
    "import-annotations": "nuclei_tf.cli.annotations:import_annotations",
    "models": "nuclei_tf.cli.models:models",
    "normalize": "nuclei_tf.cli.normalize:normalize",
    "predict": "nuclei_tf.cli.predict:predict",
    "upgrade-model": "nuclei_tf.cli.model_folder:upgrade_model",
}

#: one-line help shown by `nuclei-tf --help` without importing the command module.
SHORT_HELP = {
    "calibrate": "Choose a model's threshold and splitting on the validation split; write a model folder.",
    "cohort": "Segment a cohort of slides on Dask (this machine, a running cluster or Slurm), with summaries.",
    "data": "Inspect datasets and split protocols.",
    "baseline": "Run a classical baseline (Otsu, watershed, Fiji-like) on a protocol's test sets.",
    "demo": "Segment the shipped sample image with the shipped model.",
    "evaluate": "Score predicted instance maps against a protocol's test sets.",
    "export": "Export a model as a TF Serving SavedModel (uint8 images of any size).",
    "fit": "Train or fine-tune a model on a paper's protocol or on your own annotations (--data).",
    "import-annotations": "Turn QuPath GeoJSON annotations of an image or slide into training tiles.",
    "models": "List every architecture with its options and parameter count.",
    "normalize": "Stain-normalise H&E images to a reference image (Macenko, Vahadane, Reinhard).",
    "predict": "Segment nuclei in images of any size (labels, overlay, GeoJSON, CSV).",
    "upgrade-model": "Rewrite a format-1 model folder's config.json with every setting stated.",
}


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that command runs."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx, formatter):
        """List the commands from SHORT_HELP so `--help` imports none of them."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, SHORT_HELP[name]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=lambda ctx, param, value: _version(ctx, value),
              help="Show the version and the device TensorFlow computes on (a GPU after `pip install -e \".[gpu]\"`), and exit.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's own start-up and log lines.")
@click.pass_context
def cli(ctx, verbose):
    """nuclei-tf: deep-learning segmentation of cell nuclei in H&E histopathology."""
    warnings.showwarning = _one_line_warning
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    if ctx.invoked_subcommand in TENSORFLOW_COMMANDS and "--help" not in sys.argv and "-h" not in sys.argv:
        tune_allocator()  # before TensorFlow starts its threads
        click.echo(start_tensorflow(verbose), err=True)


def _version(ctx, value):
    """--version: the package version, then the device line (TensorFlow started to find it)."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"nuclei-tf, version {__version__}")
    click.echo(start_tensorflow())
    ctx.exit()


def main():
    """The console entry point: the command, then the end of the process without Python's
    finalisation once every stream is flushed (TensorFlow's teardown took 0.75 s of each run;
    outputs are complete and closed before a command returns)."""
    try:
        cli()
        code = 0
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _terminate(signum, frame):
    """SIGTERM (sent by SLURM, docker, Kubernetes) stops a command the way Ctrl-C does: fit
    checkpoints, a slide run keeps its finished strips, no partial file is left."""
    raise KeyboardInterrupt


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Print warnings as one 'warning: ...' line on stderr, without the source line."""
    click.echo(f"warning: {message}", err=True)
