"""The router process's garbage collector: what start builds is kept out of every collection.

A router builds its long-lived state at start (the consent view, the delivery index, the replay
guard, the registry and keys: hundreds of thousands of objects at a million consents) and then
allocates short-lived trees per message. CPython's cyclic collector traverses every tracked
object of a generation it collects, so each full collection walks that whole state again: a
pause of the routing loop that grows with the number of consents (issue 19 point 5: p99 at
500 msgs/s), for garbage the state never is. Reference counting frees the per-message trees
without the collector; it only has to find cycles.

So, once the state is built, :func:`settle` collects what start left behind and moves
everything still alive into the permanent generation (``gc.freeze``: never traversed, never
collected) and lets the youngest generation fill up to :data:`YOUNG_THRESHOLD` objects
before a collection instead of 700, so the per-message garbage mostly dies by reference count
before a collection has to look at it. Cycles are still collected, only less often. The price:
one full collection per call (tens of milliseconds, at start and after a rebuild), and a cycle
that was alive when frozen is never collected once it is garbage (a consent view replaced after
the broker lost its state, if it holds cycles, stays in memory; that happens once per broker
loss). Collecting first matters: freezing garbage would keep it for good (unclosed sockets
and files of what start used, in a test process everything earlier tests left). The bench
profiles the pipeline under the same settings (``broker/apps/bench/stages.py``).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (minus deallocations) of tracked objects before the youngest generation is
collected (CPython's default: 700). A routed referral leaves about a hundred such objects
alive for a moment, so the default collects several times per fetched batch."""


def settle() -> None:
    """Freeze what is alive now and collect the young generation less often. Called when the
    router's state is built (and again after a rebuild); idempotent."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, young), middle, old)
    gc.collect()  # garbage frozen would be kept for good
    gc.freeze()
