"""One way to remember what was worked out once, so that a rule module reads as the rule.

A pure function of hashable arguments is decorated with ``functools.cache`` (a small, closed
set of keys) or ``functools.lru_cache(maxsize=...)`` (keys from the traffic). Everything else
uses :class:`Memo`: a value kept under a key the caller works out (a record's shape, several
parts of a message), one cache per object, or an entry that is stored only after a check.

Pure and without I/O, at the bottom layer, so every package may use it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A map from key to a value made once. With ``maxsize`` it is bounded: when full, the
    least recently used entry goes. ``None`` is never stored (``get`` answers ``None`` for a
    key it does not hold).

    Asyncio code uses it from one thread; ``lock`` covers the odd worker thread
    (``asyncio.to_thread``), and callers that change a stored value in place take it too. A
    value may be made twice by two threads at once; the last one stays."""

    __slots__ = ("_data", "_maxsize", "lock")

    def __init__(self, maxsize: int | None = None) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._maxsize = maxsize
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if self._maxsize is None:  # nothing to reorder: one read, atomic under the GIL
            return self._data.get(key)
        with self.lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (dropping the least recently used if full); returns
        ``value``."""
        with self.lock:
            self._data[key] = value
            if self._maxsize is not None:
                self._data.move_to_end(key)
                while len(self._data) > self._maxsize:
                    self._data.popitem(last=False)
        return value

    def get_or_make(self, key: K, make: Callable[..., V], *args: object) -> V:
        """The value under ``key``, made by ``make(*args)`` and stored when absent (an
        exception from ``make`` is raised, nothing is stored)."""
        value = self._data.get(key) if self._maxsize is None else self.get(key)
        if value is None:
            value = self.put(key, make(*args))
        return value

    def clear(self) -> None:
        with self.lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
