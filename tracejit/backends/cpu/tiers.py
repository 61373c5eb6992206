"""Two tiers of compiled code for one program: a quick first tier that runs at once, and the optimized tier
compiled in the background when the function proves worth it."""
from __future__ import annotations

import time
import threading
import warnings

from ...lower import plan_graph
from .executable import LLVMExecutable, log_compile
from .jobs import BackgroundJob, Cancelled, prestart, start_now, submit

TIER_UP_SECONDS = 0.02  # time spent in first-tier code after which the optimized tier is compiled ...
TIER_UP_CALLS = 2  # ... or calls after which it is (a function called again is likely to be called more)
# The first call plans the tier-up this long after it ends (plus twice its own run time), on the timer thread,
# to happen if calls have earned it by then: a second call made meanwhile hands nothing over (no thread wakes in
# it), and runs before the compile takes a core and the GIL. A call that earns the tier-up later starts it.
TIER_UP_DELAY = 0.02
# The optimized tier takes about this many times the first tier's compile time; a call whose first-tier run
# would take longer than what is left of that waits for the optimized code instead (big arrays)
TIER1_COMPILE_RATIO = 20.0
OVERRUN_LEFT = 0.25  # what is assumed left of a compile that has run longer than TIER1_COMPILE_RATIO predicts
TIER0_SECONDS_PER_KERNEL = 0.003  # the first tier's compile time per kernel, when it came from the disk cache
TIER_MIN_STEPS = 4  # programs of fewer steps without vector math compile at O3 at once (a few ms: no tiers)
# (tracejit.compile.build_executable decides between the tiers and backends with these)


class TieredExecutable:
    """Two-tier compilation, as JIT compilers for dynamic languages do: the first call runs code compiled in a
    fraction of the time (transcendental functions as scalar libm calls, LLVM's quick pipeline); once the
    function is called again (TIER_UP_CALLS), or calls have spent TIER_UP_SECONDS in it, the optimized code is
    compiled in a background thread while calls keep running the first tier, and ``run`` switches to it when it
    is ready (one attribute store: a call sees either tier whole). The first call plans that compile (see
    TIER_UP_DELAY), so the second call hands nothing over to another thread: it only runs. A disk cache hit for
    the optimized code skips the first tier; ``wait`` compiles the optimized tier now and returns when it is in
    place."""

    def __init__(self, graph, planned=None):
        self.graph = graph
        self._planned = planned or plan_graph(graph)  # both tiers lower the same fusion and memory plan
        # optimized code at once when the disk cache holds it, or when every kernel it calls is known (this
        # process or the disk cache: a new program made of known kernels compiles only its entry)
        t0 = time.perf_counter()
        self._exe = self._from_disk()
        if self._exe is None or self._exe.tier < 1:
            prestart()  # the tier-up's threads start now, in the first call's compile, not in a later call
        if self._exe is None:  # cold: the IR is built once, for the known-kernels probe and the first tier
            fast = LLVMExecutable(graph, tier=1, cache_only=True, planned=self._planned, known_kernels_only=True)
            t0 = time.perf_counter()
            self._exe = fast if fast.compiled is not None else \
                LLVMExecutable(graph, tier=0, planned=self._planned, source=fast.source)
            if self._exe is not fast and "ir_build" in fast.compile_stats:  # the IR was built by the probe
                self._exe.compile_stats["ir_build"] = fast.compile_stats["ir_build"]
        # from the disk cache, the first tier's load time says nothing of the optimized compile: guess it from
        # the number of kernels (a first tier on disk without the optimized one: a process that exited early)
        self._tier0_compile_s = TIER0_SECONDS_PER_KERNEL * self.num_kernels if self._exe.from_cache \
            else time.perf_counter() - t0
        self._last = 0.0  # seconds of the latest first-tier call
        self._spent = 0.0
        self._calls = 0
        self._lock = threading.Lock()
        self._job = None  # the background compile of the optimized tier, once started
        self.tier_up_error = None  # why the optimized tier failed to compile (the first tier keeps running)
        self._when_optimized = []  # weak methods called once the optimized tier runs (the jitted call path)
        # ``run`` is the optimized executable's own driver once that exists: no wrapper left on the call path
        self.run = self._exe.run if self._exe.tier >= 1 else self._run_first_tier

    def _from_disk(self):
        """The optimized tier from the disk cache, else the first tier from it, else None. A warm start builds no
        IR: the known-kernels probe (which needs the IR's kernel hashes) is for cold starts."""
        for tier in (1, 0):
            exe = LLVMExecutable(self.graph, tier=tier, cache_only=True, planned=self._planned)
            if exe.compiled is not None:
                return exe
        return None

    @property
    def tier(self):
        return self._exe.tier

    def _run_first_tier(self, arrays):
        job = self._job
        # a first-tier call that would take longer than the rest of the optimized compile waits for it (not the
        # call that earns the tier-up: that one runs the first tier, as calls before it did)
        if job is not None and not job.lost and self._earned() and self._last >= self._compile_left(job):
            start_now(job)  # (a planned job starts now: waiting for its time would only add to the wait)
            job.join()
            if self._exe.tier >= 1:  # (else the compile failed: this tier keeps running)
                return self.run(arrays)
        t0 = time.perf_counter()
        out = self._exe.run(arrays)
        self._last = time.perf_counter() - t0
        self._spent += self._last  # (a lost update under a race only delays the tier-up)
        self._calls += 1
        # the background compile starts after this call, not before it: the call that earns the tier-up does
        # not share the cores with its start (thread, LLVM's parsing)
        if job is None or job.lost:
            if self._earned():
                self.tier_up()
            elif self._calls == 1:
                self._plan_tier_up(TIER_UP_DELAY + 2 * self._last)
        return out

    def _earned(self):
        return self._spent >= TIER_UP_SECONDS or self._calls >= TIER_UP_CALLS

    def _compile_left(self, job):
        """Estimated seconds until the background compile is done: TIER1_COMPILE_RATIO times the first tier's
        compile, less the time it has run (none for a job still planned). An estimate already overrun says little
        of what is left: then at least OVERRUN_LEFT of the estimate (calls keep running the first tier instead of
        waiting on an unknown rest)."""
        predicted = TIER1_COMPILE_RATIO * self._tier0_compile_s
        ran = 0.0 if job.started_at is None else time.perf_counter() - job.started_at
        return max(predicted - ran, OVERRUN_LEFT * predicted)

    def _new_job(self):
        return BackgroundJob(self._compile_optimized, f"tracejit tier-up ({self.num_kernels} kernels)")

    def _plan_tier_up(self, delay):
        """Compile the optimized tier in ``delay`` seconds if calls have earned it by then."""
        with self._lock:
            if (self._job is None or self._job.lost) and self._exe.tier < 1:
                self._job = submit(self._new_job(), delay, go=self._earned)

    def tier_up(self, wait=False):
        """Start compiling the optimized tier in the background (once); ``wait``: and wait until it runs."""
        with self._lock:
            if (self._job is None or self._job.lost) and self._exe.tier < 1:
                self._job = submit(self._new_job())
            job = self._job
        if wait and job is not None:
            start_now(job)
            job.join()
            if self.tier_up_error is not None and not isinstance(self.tier_up_error, Cancelled):
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
            if not isinstance(e, Cancelled):
                warnings.warn(f"tracejit: the optimized tier failed to compile ({type(e).__name__}: {e}); calls "
                              f"keep running the quick tier's code", RuntimeWarning)
            return
        log_compile("optimized tier (background)", exe.compile_stats)
        self._exe = exe
        self.run = exe.run  # the switch: callers look ``run`` up at each call
        for ref in self._when_optimized:
            callback = ref()
            if callback is not None:
                callback()

    def optimized_executable(self):
        """The optimized tier's LLVMExecutable once calls run it, else None."""
        return self._exe if self._exe.tier >= 1 else None

    def when_optimized(self, ref):
        """Call ``ref()()`` (a weak method) once the optimized tier runs (api.jit regenerates its call path)."""
        self._when_optimized.append(ref)

    def __getattr__(self, name):  # num_kernels, llvm_ir, asm, plan, memory_plan, kernel_groups, ...
        return getattr(self._exe, name)
