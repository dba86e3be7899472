"""The heap of a long-running daemon: the garbage collector, and the C allocator's reuse.

What is alive once the daemon has started (modules, the rules, the pipeline, the
restored alert state) lives as long as the process, yet every full collection walks
it again: at 1,000 rules that is about 0.1 s of CPU every few cycles, as much as the
evaluation itself. ``settle`` moves it out of the collector's reach (``gc.freeze``);
objects that die later are still freed as usual. After a reload, the old pipeline's
objects may have become cyclic garbage, so they are given back to the collector first.
While that heap is being built (start-up, ``check``), the collector is held off
altogether: each of its full passes there walks everything built so far again.

Large buffers (an answer's body, its rows' arrays) come and go every cycle between the
columns, which stay. glibc's allocator serves a buffer from its heap once a buffer of
that size has been freed (its mmap threshold follows the largest one freed), and a
heap with one live column above a freed buffer cannot give the buffer back: measured
at 1,000 rules × 20 stacks, 90 MB of the daemon's RSS was such free heap. ``limit_
fragmentation`` fixes the threshold (buffers over 128 KiB are mapped on their own and
unmapped when freed) and keeps to two heaps for the daemon's dozen threads. What a
cycle frees below that size (SQLite's pages, the smaller buffers) leaves free pages
amid the heap, which glibc keeps: ``trim`` gives them back after each cycle (about
4 MB at 1,000 × 20).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

#: glibc's ``mallopt`` parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2


def hold() -> None:
    """No collections until ``settle`` or ``release`` (or the process's end)."""
    gc.disable()


def release() -> None:
    gc.enable()


def settle() -> None:
    """Collect what is garbage now, then keep everything alive out of later collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.enable()


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (looked up once: finding it runs ``ldconfig``)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt, libc.malloc_trim  # noqa: B018 (glibc's, or not)
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def trim() -> None:
    """Give the free pages inside glibc's heaps back to the system (``malloc_trim``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def limit_fragmentation() -> bool:
    """Tune glibc's allocator as above; False where it is not glibc's (nothing to tune)."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # (each call answers 1 when the parameter was taken)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) & mallopt(_M_ARENA_MAX, ARENA_MAX))
