"""`nuclei-tf models`: every architecture with its options and parameter count."""
import json
import os
from pathlib import Path

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: ``describe(count=False)`` of the registry, stored so that ``models --no-params`` needs neither
#: Keras nor TensorFlow; ``python -m nuclei_tf.cli.models`` rewrites it, a test keeps it current
CATALOG = Path(__file__).resolve().parents[1] / "models" / "catalog.json"


def _jsonable(value):
    """Option defaults as JSON values (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def measure(spec):
    """``(parameters, input multiple)`` of ``spec``'s model at its default options (built, then freed)."""
    import keras

    model = spec.build()
    measures = model.count_params(), model.get_layer("input_size_check").multiple
    keras.backend.clear_session()
    return measures


def describe(count):
    """One dict per arch: name, description, default options and (if ``count``) the parameter count
    and the number height and width must be multiples of, at the default options."""
    from nuclei_tf.models import list_models

    rows = []
    for spec in list_models():
        params, multiple = measure(spec) if count else (None, None)
        rows.append(
            {
                "arch": spec.name,
                "description": spec.description,
                "options": _jsonable(spec.options),
                "params": params,
                "input_multiple": multiple,
            }
        )
    return rows


def _table(rows):
    width = max(len(row["arch"]) for row in rows)
    lines = [f"{'arch'.ljust(width)}  {'params':>12}  {'input':>5}  description"]
    for row in rows:
        params = "-" if row["params"] is None else f"{row['params']:,}"
        multiple = "-" if row["input_multiple"] is None else f"/{row['input_multiple']}"
        lines.append(f"{row['arch'].ljust(width)}  {params:>12}  {multiple:>5}  {row['description']}")
        options = ", ".join(f"{name}={json.dumps(value)}" for name, value in row["options"].items())
        lines.append(f"{''.ljust(width)}  {'':>12}  {'':>5}  options: {options}")
    lines.append("input: height and width must be multiples of this number (at the default options)")
    return "\n".join(lines)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option(
    "--no-params", is_flag=True, help="Do not build the models to count their parameters (instant)."
)
def models(as_json, no_params):
    """List every architecture with its options and parameter count at the default options."""
    rows = json.loads(CATALOG.read_text()) if no_params else describe(count=True)
    click.echo(json.dumps(rows, indent=2) if as_json else _table(rows))


if __name__ == "__main__":
    CATALOG.write_text(json.dumps(describe(count=False), indent=1) + "\n")
    print(f"wrote {CATALOG}")
