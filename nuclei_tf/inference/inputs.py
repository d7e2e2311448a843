"""The files a `predict` run reads: paths as given, folders searched recursively for the image
and slide formats it reads, and list files (one path per line)."""
from pathlib import Path

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import IMAGE_SUFFIXES
from nuclei_tf.inference.outputs import SLIDE_SUFFIXES

#: whole-slide formats OpenSlide opens (besides the tiled TIFFs among IMAGE_SUFFIXES)
SLIDE_FORMATS = {".svs", ".ndpi", ".vms", ".vmu", ".mrxs", ".scn", ".bif", ".svslide", ".dcm"}
#: names `predict` writes: a folder holding earlier results does not feed them back in
OUTPUT_ENDINGS = tuple(SLIDE_SUFFIXES.values())


def folder_inputs(folder):
    """Every image or slide file under ``folder`` (recursive, sorted; hidden files, predict's own
    outputs and unfinished slide runs' ``.parts`` folders left out); a folder without any is refused."""
    folder = Path(folder)
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | SLIDE_FORMATS
                   and not p.name.startswith(".") and not p.name.lower().endswith(OUTPUT_ENDINGS)
                   and not any(part.endswith(".parts") for part in p.relative_to(folder).parts[:-1]))
    if not found:
        raise DataError(folder, f"holds no image or slide file ({', '.join(sorted(IMAGE_SUFFIXES | SLIDE_FORMATS))})")
    return found


def list_inputs(list_file):
    """The paths in ``list_file``, one a line (blank lines and ``#`` comments skipped; relative
    paths are relative to the list's folder); a missing one is refused naming its line."""
    list_file = Path(list_file)
    paths = []
    for number, line in enumerate(list_file.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line).expanduser()
        path = path if path.is_absolute() else list_file.parent / path
        if not path.exists():
            raise DataError(list_file, f"line {number}: {line}: no such file or folder")
        paths.append(path)
    if not paths:
        raise DataError(list_file, "lists no file")
    return paths


def expand_inputs(paths, list_file=None):
    """Files and folders as given (folders expanded), then those of ``list_file``, in order,
    each file once."""
    given = list(paths) + (list_inputs(list_file) if list_file is not None else [])
    files = [f for p in given for f in (folder_inputs(p) if Path(p).is_dir() else [Path(p)])]
    return list(dict.fromkeys(files))
