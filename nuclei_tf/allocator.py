"""glibc malloc settings for long runs over whole slides.

By default glibc raises its mmap threshold each time a large block is freed (up to 32 MiB),
after which the strip-sized temporaries of a slide run (probability bands, post-processing
windows, measurement reads: 1-100 MB each) come from the heap, whose freed space is reused
piecemeal rather than returned to the system, and every thread gets its own heap (arena).
The resident size of a 40,000 px slide run then creeps up by hundreds of MB. Fixing the
threshold at 1 MiB (large blocks are mapped and unmapped on free) and capping arenas at 2
keeps it flat; what the heaps still hold free after a strip (68 MiB on average on a
40,000 px wide slide) goes back to the system with :func:`release_free_memory`.
``benchmarks/bench_slide.py`` measures the result.
"""
import ctypes
import ctypes.util
import functools
import sys

#: glibc ``mallopt`` parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library when it is glibc on Linux (it has ``malloc_trim``), else None (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def tune_allocator(mmap_threshold=1 << 20, arenas=2):
    """Apply the settings through ``mallopt``; False where the C library is not glibc."""
    libc = _glibc()
    return libc is not None and libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and libc.mallopt(M_ARENA_MAX, arenas) == 1


def release_free_memory():
    """Return the free pages of every malloc heap to the system (glibc ``malloc_trim(0)``, a few
    ms); True when some were released, False when none were or the C library is not glibc."""
    libc = _glibc()
    return libc is not None and libc.malloc_trim(0) == 1
