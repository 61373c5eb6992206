"""Recycling of big output buffers: the memory of an array the caller has dropped is written again by a later call
instead of a fresh np.empty, whose first touch costs a page fault per page."""
from __future__ import annotations

import collections
import os
import threading
import weakref
from sys import getrefcount as _getrefcount

import numpy as np


class RecycledMemory(np.ndarray):
    """The bytes behind a recycled buffer. A subclass so that numpy's view chains stop at the array handed out:
    ``out[1:].base is out``, so every view, memoryview or ctypes pointer of an output keeps the output itself
    alive, and the pool's weakref to the output fires only when none of them is left."""


def default_recycle_bytes() -> int:
    """``TRACEJIT_RECYCLE_BYTES`` if set (0 turns recycling off), else 1/32 of the RAM, at most 1 GiB."""
    env = os.environ.get("TRACEJIT_RECYCLE_BYTES", "").strip()
    if env:
        try:
            return max(0, int(float(env)))
        except ValueError:
            raise ValueError(f"TRACEJIT_RECYCLE_BYTES must be a number of bytes, got {env!r}") from None
    try:
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return min(ram // 32, 1 << 30)


class RecyclePool:
    """Memory of big buffers whose arrays have died, kept for the next call that needs as many bytes.

    A call gets a fresh ndarray over a RecycledMemory block; a weakref callback hands the block back once that
    array and all its views are gone (so a caller who still holds an output, a view of it or a weakref that still
    resolves never sees it overwritten). Idle blocks are bounded by ``limit`` bytes, the least recently freed
    leave first; those an executable used last leave when it is garbage-collected; ``clear`` drops them all.

    Weakref callbacks run at any moment, on any thread, even inside this pool's own critical sections (a garbage
    collection started by an allocation there), so nothing here waits for the lock: a thread that cannot take it
    queues its work, and whoever holds the lock does the queued work before letting go.
    """

    def __init__(self, limit=None):
        self._limit = limit
        self._lock = threading.Lock()
        self._free = {}  # nbytes -> [id(block)] of idle blocks, most recently freed last
        self._lru = collections.OrderedDict()  # id(block) -> (block, owner) of every idle block, oldest first
        self._leased = {}  # id(weakref to an array handed out) -> (weakref, block, owner)
        self._returned = collections.deque()  # (weakref, block, owner) of arrays that died, not yet idle
        self._dead = collections.deque()  # owners garbage-collected while the lock was taken
        self._owners = {}  # id -> weakref to each live executable (kept here, so the callback outlives a cycle)
        self.idle_bytes = 0

    @property
    def limit(self) -> int:
        if self._limit is None:
            self._limit = default_recycle_bytes()
        return self._limit

    @limit.setter
    def limit(self, nbytes):
        self._limit = nbytes
        self._settle()

    def take(self, shape, dtype, nbytes, owner):
        """An uninitialized array of ``shape``: recycled memory when some is idle, else fresh memory."""
        block = None
        if nbytes in self._free and self._lock.acquire(False):  # (lock taken: fresh memory rather than waiting)
            try:
                ids = self._free.get(nbytes)  # read again under the lock: another thread may have emptied it
                while ids:
                    block, _ = self._lru.pop(ids.pop())
                    self.idle_bytes -= nbytes
                    # two references: ``block`` and getrefcount's argument. More: someone kept the block itself
                    # (``out.base``) after its array died; it is theirs now, never handed out again
                    if _getrefcount(block) == 2:
                        break
                    block = None
                if ids is not None and not ids:
                    del self._free[nbytes]
            finally:
                self._lock.release()
            if self._returned or self._dead:
                self._settle()
        if block is None:
            if not self.limit:
                return np.empty(shape, dtype)
            block = np.ndarray.__new__(RecycledMemory, (nbytes,), np.uint8)
        out = np.ndarray(shape, dtype, buffer=block)
        ref = weakref.ref(out, self._array_died)
        self._leased[id(ref)] = (ref, block, owner)
        return out

    def take_poisoned(self, shape, dtype, nbytes, owner):
        """``take`` with every byte 0xFF (TRACEJIT_POISON_BUFFERS), so reads of unwritten memory show."""
        out = self.take(shape, dtype, nbytes, owner)
        out.reshape(-1).view(np.uint8).fill(0xFF)
        return out

    def _array_died(self, ref):
        """Weakref callback: the array handed out and all its views are gone; its block becomes idle."""
        item = self._leased.pop(id(ref), None)
        if item is not None:
            self._returned.append(item)
            if self._lock.acquire(False):
                self._drain()

    def owner(self, executable):
        """The weakref by which recycled blocks remember the ``executable`` that used them last."""
        ref = weakref.ref(executable, self._owner_died)
        self._owners[id(ref)] = ref
        return ref

    def _owner_died(self, ref):
        """Weakref callback: the executable was garbage-collected; the idle blocks it used last go."""
        self._owners.pop(id(ref), None)
        self._dead.append(ref)
        self._settle()

    def _settle(self):
        """Do the queued work now, unless the lock is taken (then its holder does it)."""
        if self._lock.acquire(False):
            self._drain()

    def _drain(self):
        """With the lock taken: do the queued work and release the lock; again if more came meanwhile."""
        while True:
            try:
                limit = self.limit
                while self._returned:
                    _, block, owner = self._returned.popleft()
                    if owner() is not None and block.nbytes <= limit:
                        self._lru[id(block)] = (block, owner)
                        self._free.setdefault(block.nbytes, []).append(id(block))
                        self.idle_bytes += block.nbytes
                while self._dead:
                    dead = self._dead.popleft()
                    for key in [k for k, (_, o) in self._lru.items() if o is dead]:
                        self._drop(key)
                while self.idle_bytes > limit:
                    self._drop(next(iter(self._lru)))
            finally:
                self._lock.release()
            if not (self._returned or self._dead) or not self._lock.acquire(False):
                return

    def _drop(self, key):
        block, _ = self._lru.pop(key)
        ids = self._free[block.nbytes]
        ids.remove(key)
        if not ids:
            del self._free[block.nbytes]
        self.idle_bytes -= block.nbytes

    def clear(self):
        """Give every idle block back (arrays still in use are untouched)."""
        with self._lock:
            self._returned.clear()
            self._lru.clear()
            self._free.clear()
            self.idle_bytes = 0

    def stats(self) -> dict:
        """Idle blocks and bytes, and arrays handed out that are still alive (for tests and benchmarks)."""
        return {"idle_blocks": len(self._lru), "idle_bytes": self.idle_bytes, "leased": len(self._leased),
                "limit": self.limit}


recycler = RecyclePool()
