"""Output files whose errors name them, and final names checked before any work.

A write into a full disk raises ``OSError(ENOSPC)`` without a file name (the kernel's error
comes back from ``write`` or ``close`` on a file object); :func:`naming` and
:class:`NamedFile` attach the path being written, so the command's one line says which file
and where. :func:`check_final_names` refuses, before anything is computed, an output name that
exists as a folder (or anything but a file), which would otherwise stop the final rename
after all the work.
"""
from contextlib import contextmanager
from pathlib import Path

from nuclei_tf.data.errors import DataError


@contextmanager
def naming(path):
    """Re-raise an OSError raised without a file name as the same error naming ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise


class Writer:
    """Used in ``with``: :meth:`close` finishes the output when the block succeeds; after an error
    :meth:`abandon` only releases it (the error being raised says what failed)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:
            self.abandon()


class NamedFile(Writer):
    """``open(path, mode)`` whose ``write``, ``flush`` and ``close`` errors name ``name`` (default:
    ``path``; an output written under a temporary name is named by its final one)."""

    def __init__(self, path, mode="w", name=None, **options):
        self.path, self.name = Path(path), Path(name or path)
        with naming(self.name):
            self._file = open(self.path, mode, **options)

    def write(self, data):
        with naming(self.name):
            return self._file.write(data)

    def flush(self):
        with naming(self.name):
            self._file.flush()

    def tell(self):
        return self._file.tell()

    @property
    def closed(self):
        return self._file.closed

    def close(self):
        with naming(self.name):
            self._file.close()

    def abandon(self):
        try:
            self._file.close()
        except OSError:
            pass


def partial_path(path):
    """The temporary name an output is written under until it is complete: ``<name>.partial``."""
    return path.with_name(path.name + ".partial")


def check_final_names(paths):
    """Refuse any of ``paths`` (or its ``.partial``) that exists as something other than a file."""
    for path in map(Path, paths):
        for candidate in (path, partial_path(path)):
            if candidate.exists() and not candidate.is_file():
                raise DataError(candidate, "exists and is not a file (a folder?); outputs are written under this name: "
                                           "remove it or choose another --out")
