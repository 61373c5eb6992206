"""The executable: checks run-time shapes, allocates buffers, runs the compiled steps.

A call runs generated Python (read shapes, check constraints, ``np.empty`` the outputs) and then either the
whole program in one METH_FASTCALL builtin (small work: about a microsecond in all) or, for large work, each
kernel split across a thread pool through ctypes (which releases the GIL).
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import gc
import os
import re
import sys
import time
import warnings
import weakref
from sys import getrefcount as _getrefcount
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..ir import types as T
from ..ir.constraints import ConstraintKind
from ..lower.plan import BufferKind
from ..ir.interpret import evaluate

# Elements of the biggest loop nest below which one call of the native entry runs everything on this thread:
# splitting costs ~5 us per step through ctypes plus ~20 us per thread hand-off, which pays off only above this.
PARALLEL_THRESHOLD = 1 << 18
# Buffers at least this big are recycled (see RecyclePool): the memory of an array the caller has dropped is
# written again by a later call instead of a fresh np.empty, whose first touch costs a page fault per page (and THP
# compaction stalls on these machines).
POOL_MIN_BYTES = 1 << 17
# The largest length or leading dimension a 32-bit-integer (LP64) BLAS takes; longer ones would wrap around.
LP64_MAX = (1 << 31) - 1
KERNEL_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


class InterpretedExecutable:
    """Runs a graph with numpy (the reference backend)."""

    num_kernels = 0

    def __init__(self, graph, tier=1, cache_only=False):
        self.graph = graph

    def run(self, arrays):
        return [np.array(o) for o in evaluate(self.graph, arrays)]

    def llvm_ir(self):
        return ""

    def asm(self):
        return ""


TIER_UP_SECONDS = 0.02  # time spent in first-tier code after which the optimized tier is compiled ...
TIER_UP_CALLS = 2  # ... or calls after which it is (a function called again is likely to be called more)
# The optimized tier takes about this many times the first tier's compile time; a call whose first-tier run
# would take longer than what is left of that waits for the optimized code instead (big arrays)
TIER1_COMPILE_RATIO = 3.0
TIER0_SECONDS_PER_KERNEL = 0.02  # the first tier's compile time per kernel, when it came from the disk cache
TIER_MIN_STEPS = 4  # programs of fewer steps without vector math compile at O3 at once (a few ms: no tiers)
# (tracejit.compile.build_executable decides between the tiers and backends with these)


def log_compile(what, stats):
    """With TRACEJIT_LOG_COMPILES=1, one line on stderr per compile: where its time went (seconds) and how many
    kernels and distinct step functions it made (dedup hits: steps that reused an identical function)."""
    if os.environ.get("TRACEJIT_LOG_COMPILES", "").strip() in ("", "0"):
        return
    parts = [f"{k} {v * 1e3:.1f} ms" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items()]
    print(f"tracejit compile {what}: " + ", ".join(parts), file=sys.stderr, flush=True)


def plan_graph(graph):
    """(fusion plan, memory plan) of an optimized graph: what every backend tier lowers."""
    from ..lower.fuse import plan
    from ..lower.memory import plan_memory
    p = plan(graph)
    return p, plan_memory(p)


class TieredExecutable:
    """Two-tier compilation, as JIT compilers for dynamic languages do: the first call runs code compiled in a
    fraction of the time (transcendental functions as scalar libm calls, LLVM's quick pipeline); once the
    function is called again (TIER_UP_CALLS), or calls have spent TIER_UP_SECONDS in it, the optimized code is
    compiled in a background thread while calls keep running the first tier, and ``run`` switches to it when it
    is ready (one attribute store: a call sees either tier whole). A disk cache hit for the optimized code skips
    the first tier; ``wait`` compiles the optimized tier now and returns when it is in place."""

    def __init__(self, graph, planned=None):
        self.graph = graph
        self._planned = planned or plan_graph(graph)  # both tiers lower the same fusion and memory plan
        fast = LLVMExecutable(graph, tier=1, cache_only=True, planned=self._planned)
        t0 = time.perf_counter()
        self._exe = fast if fast.compiled is not None else LLVMExecutable(graph, tier=0, planned=self._planned)
        # from the disk cache, the first tier's load time says nothing of the optimized compile: guess it from
        # the number of kernels (a first tier on disk without the optimized one: a process that exited early)
        self._tier0_compile_s = TIER0_SECONDS_PER_KERNEL * self.num_kernels if self._exe.from_cache \
            else time.perf_counter() - t0
        self._job_started = 0.0
        self._last = 0.0  # seconds of the latest first-tier call
        self._spent = 0.0
        self._calls = 0
        self._lock = threading.Lock()
        self._job = None  # the background compile of the optimized tier, once started
        self.tier_up_error = None  # why the optimized tier failed to compile (the first tier keeps running)
        # ``run`` is the optimized executable's own driver once that exists: no wrapper left on the call path
        self.run = self._exe.run if self._exe.tier >= 1 else self._run_first_tier

    @property
    def tier(self):
        return self._exe.tier

    def _run_first_tier(self, arrays):
        job = self._job
        if (job is None or job.lost) and (self._spent >= TIER_UP_SECONDS or self._calls + 1 >= TIER_UP_CALLS):
            self.tier_up()
        elif job is not None and self._last >= self._compile_left():
            job.join()  # a first-tier call would take longer than the rest of the optimized compile
            if self.run is not self._run_first_tier:
                return self.run(arrays)
        t0 = time.perf_counter()
        out = self._exe.run(arrays)
        self._last = time.perf_counter() - t0
        self._spent += self._last  # (a lost update under a race only delays the tier-up)
        self._calls += 1
        return out

    def _compile_left(self):
        """Estimated seconds until the background compile is done: TIER1_COMPILE_RATIO times the first tier's."""
        return TIER1_COMPILE_RATIO * self._tier0_compile_s - (time.perf_counter() - self._job_started)

    def tier_up(self, wait=False):
        """Start compiling the optimized tier in the background (once); ``wait``: and wait until it runs."""
        with self._lock:
            if (self._job is None or self._job.lost) and self._exe.tier < 1:
                self._job_started = time.perf_counter()
                self._job = _background(self._compile_optimized, f"tracejit tier-up ({self.num_kernels} kernels)")
            job = self._job
        if wait and job is not None:
            job.join()
            if self.tier_up_error is not None and not isinstance(self.tier_up_error, _Cancelled):
                raise self.tier_up_error

    def wait(self):
        """Compile the optimized tier now if it is not in place, and return once calls run it."""
        self.tier_up(wait=True)

    def _compile_optimized(self, cancelled):
        try:
            # the first tier's IR is this one's too: only LLVM runs here (it releases the GIL: calls go on)
            exe = LLVMExecutable(self.graph, tier=1, planned=self._planned, cancelled=cancelled,
                                 source=getattr(self._exe, "source", None))
        except BaseException as e:  # the first tier stays correct; the error is kept for wait() to raise
            self.tier_up_error = e
            if not isinstance(e, _Cancelled):
                warnings.warn(f"tracejit: the optimized tier failed to compile ({type(e).__name__}: {e}); calls "
                              f"keep running the quick tier's code", RuntimeWarning)
            return
        log_compile("optimized tier (background)", exe.compile_stats)
        self._exe = exe
        self.run = exe.run  # the switch: callers look ``run`` up at each call

    def __getattr__(self, name):  # num_kernels, llvm_ir, asm, plan, memory_plan, kernel_groups, ...
        return getattr(self._exe, name)


class _Cancelled(Exception):
    """A background compile stopped because the interpreter is exiting."""


class _BackgroundJob:
    """A compile on a daemon thread. Daemon: an interpreter exiting never waits on a thread it cannot see; the
    atexit hook below asks running jobs to stop at their next checkpoint and joins them, so no thread is still
    inside LLVM while the process tears LLVM's globals down."""

    def __init__(self, fn, name):
        self._fn = fn
        self.lost = False  # true in a forked child: the thread did not come along (tier_up starts another)
        self._done = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self):
        try:
            self._fn(_exiting.is_set)
        finally:
            with _jobs_lock:
                _jobs.discard(self)
            self._done.set()

    def join(self, timeout=None):
        return self._done.wait(timeout)


_jobs: set = set()
_jobs_lock = threading.Lock()
_exiting = threading.Event()


def _background(fn, name):
    """Run ``fn(cancelled)`` on a daemon thread; ``cancelled()`` turns true when the interpreter exits."""
    job = _BackgroundJob(fn, name)
    with _jobs_lock:
        if _exiting.is_set():
            return None  # nothing new starts once the interpreter exits: the first tier keeps running
        _jobs.add(job)
    job.thread.start()
    return job


def _after_fork_in_child():
    """A forked child has none of the parent's threads: its jobs will never finish, and a lock one of them held
    stays taken. Mark them lost (done, so nobody waits on them) and start with a fresh lock."""
    global _jobs_lock
    _jobs_lock = threading.Lock()
    for job in list(_jobs):
        job.lost = True
        job._done.set()
    _jobs.clear()


def _finish_jobs_before_fork():
    """fork() while a thread is inside LLVM would hand the child LLVM's locks taken, forever: compiles in flight
    finish first (fork is rare; a compile takes a second or so)."""
    with _jobs_lock:
        jobs = list(_jobs)
    for job in jobs:
        job.join()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_finish_jobs_before_fork, after_in_child=_after_fork_in_child)


@atexit.register
def _stop_background_jobs():
    """At exit: tell running compiles to stop at their next checkpoint and wait for them (a native LLVM call in
    progress finishes first; a thread left inside LLVM while its static objects are destroyed can crash)."""
    _exiting.set()
    with _jobs_lock:
        jobs = list(_jobs)
    for job in jobs:
        job.join()


# ------------------------------------------------------------------------------------------------ threads
_pool = None
_pool_lock = threading.Lock()


def _get_pool(n):
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tracejit")
        return _pool


# ------------------------------------------------------------------------------------------------ recycling
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


def clear_caches():
    """Give back what tracejit keeps for speed: idle recycled buffers, and every jitted function's compiled
    executables (the next call traces again; the disk cache spares it LLVM). Arrays still held are untouched."""
    from ..api import Jitted
    for obj in gc.get_objects():  # jitted functions keep no registry; this rare call walks the heap once
        if issubclass(type(obj), Jitted):  # (type(), not isinstance: a dead weakproxy raises on __class__)
            obj.cache_clear()
    from . import llvm
    llvm._vecmath_ir.cache_clear()
    gc.collect()  # executables are freed with their machine code (a driver and its executable form a cycle)
    recycler.clear()


# ------------------------------------------------------------------------------------------------ executable
class LLVMExecutable:
    """One compiled program for one input signature. ``run`` takes C-contiguous arrays (the caller, which knows
    the signature, copies the others once)."""

    def __init__(self, graph, tier=1, cache_only=False, planned=None, cancelled=None, source=None):
        """``cancelled``: a callable polled between compile stages; true raises _Cancelled (interpreter exit).
        ``source``: the ``source`` of an executable of the other tier for the same plan (its IR is this one's)."""
        from ..lower.dims import DimCanon
        from ..lower.plan import CopyStep, Kernel, MatmulStep
        from . import llvm as L
        self.graph = graph
        self.plan, self.memory = planned or plan_graph(graph)
        plan = self.plan
        canon = DimCanon(graph.constraints)
        if any(isinstance(st, MatmulStep) for st in plan.steps):
            L.ensure_blas_symbols()
        symbols = {s: i for i, s in enumerate(sorted(graph.symbols))}
        self.symbols = symbols
        names = [f"tj_step{i}" for i in range(len(plan.steps))]
        extents = []
        for step in plan.steps:
            if isinstance(step, Kernel):
                extents.append(L.outer_extent(step, L._collapsible(plan, step, canon)))
            elif isinstance(step, CopyStep):
                extents.append(step.src.shape[0] if step.src.shape else None)
            else:
                extents.append(None)
        from . import cache
        # the generated code is a pure function of the optimized graph and the code generator's source, so a
        # cache hit skips building the IR as well as LLVM
        key = cache.graph_key(graph, "cpu", L.codegen_fingerprint(), f"tier{tier}") if cache.enabled() else None
        self.tier = tier
        self.source = None  # (IR text, math functions called, distinct step functions) once built here
        # where this compile's time went (seconds), for TRACEJIT_LOG_COMPILES and tests
        self.compile_stats = {"tier": tier, "kernels": plan.num_kernels}
        self._ir_text = None
        self.num_functions = None  # distinct step bodies compiled (identical steps share one); None: from disk
        self.compiled = L.CompiledModule.from_cache(key, names + ["tj_entry"]) if key else None
        self.compile_stats["disk_cache"] = "hit" if self.compiled is not None else "miss"
        if self.compiled is None and cache_only:
            return
        if self.compiled is None:
            if source is None:
                t0 = time.perf_counter()
                source = self._build_ir(names, canon, cancelled)
                self.compile_stats["ir_build"] = time.perf_counter() - t0
            self.source = source
            self._ir_text, vec_used, self.num_functions = source
            self.compile_stats.update(functions=self.num_functions,
                                      dedup_hits=len(plan.steps) - self.num_functions)
            self.compiled = L.CompiledModule(self._ir_text, names + ["tj_entry"], vec_used, key,
                                             tier=tier, cancelled=cancelled, timings=self.compile_stats)
            if self.compiled.cancelled:
                raise _Cancelled("interpreter exiting")
        self._entry, self._mdef = L.make_builtin(self.compiled.addresses["tj_entry"], owner=self.compiled)
        self._kernels = [KERNEL_CFUNC(self.compiled.addresses[n]) for n in names]
        self._extents = extents
        self.num_threads = L.num_threads()
        self.run = self._make_driver()

    def _build_ir(self, names, canon, cancelled):
        """(module IR text, math functions it calls, distinct step functions): the same for both tiers."""
        from ..lower.plan import CopyStep, Kernel, MatmulStep, ScatterAddStep
        from . import llvm as L
        plan = self.plan
        module = L.ir.Module(name="tracejit")
        math = L._Math(module)  # both tiers call the vector library's symbols (they link different bodies)
        fns, ems, shared = [], [], {}
        for name, step in zip(names, plan.steps):
            if cancelled is not None and cancelled():
                raise _Cancelled("interpreter exiting")
            em = L._Emitter(module, math, plan, self.symbols, name, self.memory.slot_of, shared)
            ems.append(em)
            if isinstance(step, Kernel):
                L.lower_kernel(em, plan, step, canon)
            elif isinstance(step, CopyStep):
                L.lower_copy(em, plan, step)
            elif isinstance(step, MatmulStep):
                L.lower_matmul(em, plan, step)
            elif isinstance(step, ScatterAddStep):
                L.lower_scatter_add(em, plan, step)
            else:
                raise NotImplementedError(type(step).__name__)
            fns.append(em.wrapper)
        slot_of_input = {b.input_index: b.id for b in plan.buffers if b.kind is BufferKind.INPUT}
        L.emit_entry(module, plan, fns, self.symbols, slot_of_input, len(plan.buffers))
        return L.module_text(module, ems), frozenset(math.vec_used), len(shared)

    @property
    def num_kernels(self):
        return self.plan.num_kernels

    @property
    def from_cache(self) -> bool:
        """True when the machine code came from the on-disk cache."""
        return self.compiled.from_cache

    @property
    def kernel_groups(self):
        return self.plan.kernel_groups

    def llvm_ir(self):
        return self.compiled.optimized_ir

    def asm(self):
        return self.compiled.asm()

    def memory_plan(self, example_args=None):
        return self.memory.report(self.plan, example_args)

    # driver -------------------------------------------------------------------------------------
    def _make_driver(self):
        plan, g = self.plan, self.graph
        lines = ["def run(args):"]
        n_in = len(g.inputs)
        names = [f"a{i}" for i in range(n_in)]
        if n_in:
            lines.append(f"    {', '.join(names)}{',' if n_in == 1 else ''} = args")
        sym_src = {}
        for s, (i, ax) in g.symbols.items():
            sym_src[s] = _ident(s)
            lines.append(f"    {sym_src[s]} = a{i}.shape[{ax}]")

        def py(d):
            return T.dim_py(d, lambda s: sym_src[s])
        env_items = ", ".join(f"{s!r}: {sym_src[s]}" for s in g.symbols)
        if g.constraints:  # inline comparisons; the dict of lengths is built only to word an error
            conds = []
            for c in g.constraints:
                if c.kind is ConstraintKind.EQ and (c.a == 1 or c.b == 1):
                    continue  # a static 1 broadcasts (interpret.check_constraints words the rules)
                pa, pb = py(c.a), py(c.b)
                conds.append(f"(-{pb} <= {pa} < {pb})" if c.kind is ConstraintKind.INDEX else f"({pa} == {pb})")
            lines.append(f"    if not ({' and '.join(dict.fromkeys(conds))}): _check({{{env_items}}})")
        lines += self._blas_limit_check(py)
        slots = []
        consts = {}
        slot_vals = self.memory.slot_of
        alloc_done = set()
        for b in plan.buffers:
            if b.kind is BufferKind.INPUT:
                slots.append(f"a{b.input_index}")
            elif b.kind is BufferKind.CONST:
                consts[f"c{b.id}"] = b.const
                slots.append(f"c{b.id}")
            elif b.kind is BufferKind.FLAG:
                lines.append(f"    f{b.id} = _zeros(1, _i64)")
                slots.append(f"f{b.id}")
            else:
                root = slot_vals.get(b.id, b.id)
                if root not in alloc_done:
                    alloc_done.add(root)
                    rb = plan.buffers[root]
                    shape = "(" + ", ".join(py(d) for d in rb.shape) + ("," if len(rb.shape) == 1 else "") + ")"
                    consts[f"dt{root}"] = rb.dtype
                    nbytes = f"{py(T.prod(rb.shape))} * {rb.dtype.itemsize}"
                    if isinstance(T.prod(rb.shape), int) and T.prod(rb.shape) * rb.dtype.itemsize < POOL_MIN_BYTES:
                        lines.append(f"    b{root} = _empty({shape}, dt{root})")
                    else:  # big buffers come from the recycling pool (no page faults on reuse)
                        lines.append(f"    b{root} = _take({shape}, dt{root}, {nbytes}, _owner) if {nbytes} >= "
                                     f"{POOL_MIN_BYTES} else _empty({shape}, dt{root})")
                slots.append(f"b{root}")
        work = self._work_expr(py)
        call_args = ", ".join(slots)
        lines.append(f"    if {work} < {PARALLEL_THRESHOLD} or _nthreads == 1:")
        lines.append(f"        _entry({call_args})")
        lines.append("    else:")
        lines.append(f"        _parallel([{call_args}], [{', '.join(sym_src[s] for s in sorted(g.symbols))}], "
                     f"{{{env_items}}})")
        if plan.flag is not None:
            lines.append(f"    if f{plan.flag}[0]: _index_error()")
        outs = []
        for bid in plan.outputs:
            root = slot_vals.get(bid, bid)
            outs.append(f"b{root}")
        lines.append(f"    return [{', '.join(outs)}]")
        src = "\n".join(lines)
        poison = bool(os.environ.get("TRACEJIT_POISON_BUFFERS"))
        # recycled buffers remember this executable weakly: they are given back when it is garbage-collected
        owner = recycler.owner(self)
        ns = {"_entry": self._entry, "_take": recycler.take_poisoned if poison else recycler.take, "_owner": owner,
              "_empty": _poisoned_empty if poison else np.empty, "_zeros": np.zeros, "_i64": np.int64,
              "_check": self._check, "_parallel": self._parallel,
              "_nthreads": self.num_threads, "_index_error": _index_error, "_blas_limit": _blas_limit, **consts}
        exec(compile(src, "<tracejit driver>", "exec"), ns)
        self.driver_source = src
        return ns["run"]

    def _blas_limit_check(self, py):
        """Driver lines refusing, before any work, a matmul whose lengths a 32-bit BLAS cannot take."""
        from ..lower.plan import MatmulStep
        steps = [st for st in self.plan.steps if isinstance(st, MatmulStep)]
        if not steps:
            return []
        from . import blas
        if blas.provider().int_bits >= 64:
            return []
        dims = {d for st in steps for acc in (st.a, st.b, st.out) for d in acc.shape[-2:] + acc.strides[-2:]}
        conds = [f"{py(d)} > {LP64_MAX}" for d in dims if not isinstance(d, int) or d > LP64_MAX]
        return [f"    if {' or '.join(conds)}: _blas_limit({blas.provider().name!r}, {LP64_MAX})"] if conds else []

    def _work_expr(self, py):
        """Python source of the biggest loop-nest size of the program (decides threads or one call)."""
        sizes = []
        for step in self.plan.steps:
            dom = getattr(step, "domain", None)
            if dom is None and hasattr(step, "src"):
                dom = step.src.shape
            if dom:
                sizes.append(py(T.prod(dom)))
        sizes = list(dict.fromkeys(sizes))
        if not sizes:
            return "0"
        return sizes[0] if len(sizes) == 1 else f"max({', '.join(sizes)})"

    def _check(self, env):
        from ..ir.interpret import check_constraints
        check_constraints(self.graph, env)

    def _parallel(self, arrays, symvals, env):
        nslots = len(arrays)
        bufs = (ctypes.c_void_p * max(nslots, 1))(*[a.ctypes.data for a in arrays])
        dims = (ctypes.c_int64 * max(len(symvals), 1))(*symvals)
        nt = self.num_threads
        pool = _get_pool(nt - 1) if nt > 1 else None
        for fn, ext in zip(self._kernels, self._extents):
            n = T.eval_dim(ext, env) if ext is not None else None
            if n is None or n < 2 * nt or pool is None:
                fn(bufs, dims, 0, -1)
                continue
            bounds = [n * t // nt for t in range(nt + 1)]
            futs = [pool.submit(fn, bufs, dims, bounds[t], bounds[t + 1]) for t in range(1, nt)]
            fn(bufs, dims, bounds[0], bounds[1])
            for f in futs:
                f.result()


def _ident(symbol: str) -> str:
    """The driver's Python name for a length symbol (a data-dependent one, ``u#3``, is not an identifier)."""
    return "s_" + re.sub(r"\W", lambda m: f"_{ord(m.group())}_", symbol)


def _poisoned_empty(shape, dtype):
    """np.empty filled with 0xFF bytes (NaN, -1, True): with TRACEJIT_POISON_BUFFERS=1 a read of memory that no
    kernel wrote shows up as a wrong result in the tests instead of passing by luck."""
    out = np.empty(shape, dtype)
    out.reshape(-1).view(np.uint8).fill(0xFF)
    return out


def _blas_limit(name, limit):
    raise ValueError(f"a matmul operand has a length or row stride above {limit}, more than the 32-bit integers of "
                     f"the BLAS in use ({name}) can hold; use numpy's bundled ILP64 OpenBLAS (TRACEJIT_BLAS=numpy, "
                     f"the default when numpy's wheel ships it) or split the product into smaller blocks")


def _index_error():
    raise IndexError("an integer-array index is out of bounds for the axis it indexes")
