"""The garbage collector's thresholds for a process that holds a million sessions.

CPython's defaults, ``(700, 10, 10)``, run a young collection every 700 net
allocations of container objects. The daemon's hot paths allocate objects that live:
a first check leaves an index entry, a heap entry and a memo behind, a login a
session row. Every one of them is then traversed by young collections that find
nothing to free: in ``benchmarks.loading``'s drain (a million first checks popped),
a third of the time went to the collector, and thresholds of ``(50_000, 20, 100)``
took it back to what it is with the collector off (3.4 s against 2.0 s on the
machine of benchmarks/README.md). Garbage that only a collection frees (reference
cycles: exceptions with their tracebacks, mostly) then waits for 50,000 allocations
instead of 700: a few MiB at most.

Set by ``e911d run`` and ``e911d dev`` only: the commands that run and exit, and the
tests, keep the defaults.
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> tuple[int, int, int]:
    """Apply :data:`THRESHOLDS`; returns the thresholds they replaced."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    return before
