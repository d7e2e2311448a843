"""glibc malloc settings for long runs over whole slides.

By default glibc raises its mmap threshold each time a large block is freed (up to 32 MiB),
after which the strip-sized temporaries of a slide run (probability bands, post-processing
windows, measurement reads: 1-100 MB each) come from the heap, whose freed space is reused
piecemeal rather than returned to the system, and every thread gets its own heap (arena).
The resident size of a 40,000 px slide run then creeps up by hundreds of MB. Fixing the
threshold at 1 MiB (large blocks are mapped and unmapped on free) and capping arenas at 2
keeps it flat; ``benchmarks/bench_slide.py`` measures the result.
"""
import ctypes
import ctypes.util
import sys

#: glibc ``mallopt`` parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_allocator(mmap_threshold=1 << 20, arenas=2):
    """Apply the settings through ``mallopt``; False where the C library is not glibc (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_ARENA_MAX, arenas) == 1
