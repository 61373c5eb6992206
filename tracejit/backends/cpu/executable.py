"""The CPU executable of one program: its step functions built from a Plan (or loaded from the disk cache), the
METH_FASTCALL entry, and a driver generated in Python that checks lengths, allocates outputs and calls the entry
(or splits the steps across threads)."""
from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import sys
import time

import llvmlite.ir as ir

from ...ir import types as T
from ...lower import plan_graph
from ...lower.dims import DimCanon
from ...lower.plan import BufferKind, CopyStep, Kernel, MatmulStep, ScatterAddStep
from .driver import DriverSource, make_run, overlap_checked
from .emitter import StepEmitter, gc_paused
from .entry import StepCall, make_builtin, program_text
from .jobs import Cancelled
from .kernel_library import LIBRARY, SPLIT_MIN_FUNCTIONS, kernel_source_of, split_program
from .kernels import collapsible, lower_kernel, outer_extent
from .module import CompiledModule, codegen_fingerprint, ensure_blas_symbols
from .scalar import MathFunctions
from .step_key import is_light, step_structure
from .steps import lower_copy, lower_matmul, lower_scatter_add
from .threads import get_pool, num_threads

# Elements of the biggest loop nest below which one call of the native entry runs everything on this thread:
# splitting costs ~5 us per step through ctypes plus ~20 us per thread hand-off, which pays off only above this.
PARALLEL_THRESHOLD = 1 << 18
# Buffers at least this big are recycled (see RecyclePool): the memory of an array the caller has dropped is
# written again by a later call instead of a fresh np.empty, whose first touch costs a page fault per page (and THP
# compaction stalls on these machines).
POOL_MIN_BYTES = 1 << 17
# The largest length or leading dimension a 32-bit-integer (LP64) BLAS takes; longer ones would wrap around.
LP64_MAX = (1 << 31) - 1
# The entry module of a program split into kernels (tj_entry, tj_steps and the bodies' callers: loads of pointers
# and lengths, then calls) compiles at the quick tier's settings in both tiers: its code is no faster at O3
ENTRY_TIER = 0
_KERNEL_REF = re.compile(r'@"__tjk(\d+)__"')  # the entry text's references to its kernels (kernel_library)
# Steps with equal StepStructures (step_key.py) share one emitted body without building its IR again (tests
# switch this off to check that the shared program is the one the IR-text dedup alone makes)
PREEMISSION_DEDUP = True
ENTRY_FUNCTIONS = ["tj_entry", "tj_steps"]  # what the runtime looks up in a program's module (entry.py)


def log_compile(what, stats):
    """With TRACEJIT_LOG_COMPILES=1, one line on stderr per compile: where its time went (seconds) and how many
    kernels and distinct step functions it made (dedup hits: steps that reused an identical function)."""
    if os.environ.get("TRACEJIT_LOG_COMPILES", "").strip() in ("", "0"):
        return
    parts = [f"{k} {v * 1e3:.1f} ms" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items()]
    print(f"tracejit compile {what}: " + ", ".join(parts), file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ executable
class LLVMExecutable:
    """One compiled program for one input signature. ``run`` takes C-contiguous arrays (the caller, which knows
    the signature, copies the others once)."""

    def __init__(self, graph, tier=1, cache_only=False, planned=None, cancelled=None, source=None,
                 known_kernels_only=False):
        """``cancelled``: a callable polled between compile stages; true raises Cancelled (interpreter exit).
        ``source``: the ``source`` of an executable of the other tier for the same plan (its IR is this one's).
        ``cache_only``: only a disk cache hit, else ``compiled`` stays None; ``known_kernels_only``: or, with the
        IR built, when every kernel is known (this process, the disk cache), compiling just the entry."""
        self.graph = graph
        self.plan, self.memory = planned or plan_graph(graph)
        plan = self.plan
        canon = DimCanon(graph.constraints)
        if any(isinstance(st, MatmulStep) for st in plan.steps):
            ensure_blas_symbols()
        symbols = {s: i for i, s in enumerate(sorted(graph.symbols))}
        self.symbols = symbols
        names = [f"tj_step{i}" for i in range(len(plan.steps))]  # (a body is named after its step, + "_impl")
        from .. import cache
        # the generated code is a pure function of the optimized graph and the code generator's source, so a
        # cache hit skips building the IR as well as LLVM
        # arguments updated in place (lower/inplace.py) change where the steps store: part of the key
        written = "".join(f"-arg{j}" for j in sorted(self.memory.in_arguments))
        key = cache.graph_key(graph, "cpu", codegen_fingerprint(), f"tier{tier}{written}") if cache.enabled() \
            else None
        self.tier = tier
        self.source = None  # the ProgramSource (kernel_library) once built here
        # where this compile's time went (seconds), for TRACEJIT_LOG_COMPILES and tests
        self.compile_stats = {"tier": tier, "kernels": plan.num_kernels}
        self._ir_text = None
        self.num_functions = None  # distinct step bodies compiled (identical steps share one); None: from disk
        self.step_calls = None  # each step's StepCall, naming its body as the compiled code does
        self.compiled = self._from_disk(key) if key else None
        self.compile_stats["disk_cache"] = "hit" if self.compiled is not None else "miss"
        if self.compiled is None and cache_only and not known_kernels_only:
            return
        if self.compiled is None:
            # Streamed stores are built for the optimized tier's kernels only, body by body, when a kernel is not
            # in the library (KernelSource.build), so that the shared IR keys kernels; a program compiled whole
            # at the optimized tier builds them with the rest
            if source is None:
                defer = tier < 1 or known_kernels_only or len(plan.steps) >= SPLIT_MIN_FUNCTIONS
                source = self._timed_build(names, canon, cancelled, defer)
            if source.streams_later and tier >= 1 and not cache_only and not self._splits(source):
                source = self._timed_build(names, canon, cancelled, False)
            self.source = source
            self._ir_text = source.entry_text if self._splits(source) else source.whole
            self.num_functions = source.num_functions
            self.compile_stats.update(functions=self.num_functions,
                                      dedup_hits=len(plan.steps) - self.num_functions)
            self.compiled = self._compile(source, key, tier, cancelled, known_only=cache_only)
            if self.compiled is None:
                return
        self._entry = make_builtin(self.compiled.addresses["tj_entry"], owner=self.compiled)
        # (each step's body as a ctypes function releasing the GIL (None for a step never split), one holding it,
        # its StepCall), for calls run step by step (split across threads)
        self._step_fns = None
        self._extents = None  # made by the first call split across threads (most programs never are)
        # the quick tier runs on one thread: its few calls overlap the optimized tier's compile, which has the
        # other core (split steps waited behind it for the GIL: LeNet's second call 81-106 ms, 60 ms on one)
        self.num_threads = num_threads() if tier >= 1 else 1
        self.run, self.driver_source = make_run(self)

    def _timed_build(self, names, canon, cancelled, defer_streaming):
        t0 = time.perf_counter()
        with gc_paused():
            source = self._build_ir(names, canon, cancelled, defer_streaming)
        self.compile_stats["ir_build"] = self.compile_stats.get("ir_build", 0.0) + time.perf_counter() - t0
        return source

    def _build_ir(self, names, canon, cancelled, defer_streaming=False):
        """The ProgramSource (kernel_library): the same for both tiers (``defer_streaming``: see StepEmitter)."""
        plan = self.plan
        module = ir.Module(name="tracejit")
        math = MathFunctions(module)  # both tiers call the vector library's symbols (they link different bodies)
        calls, ems, shared, first_of, builds = [], [], {}, {}, {}
        for name, step in zip(names, plan.steps):
            if cancelled is not None and cancelled():
                raise Cancelled("interpreter exiting")
            st = step_structure(step, plan, self.memory.slot_of, isinstance(step, Kernel) and
                                collapsible(plan, step, canon)) if PREEMISSION_DEDUP else None
            first = first_of.get(st.key) if st else None
            reused = first[0].reuse_for(first[1], st) if first else None
            if reused is not None:  # a step structurally equal to an earlier one calls that one's body
                calls.append(reused)
                continue
            em = StepEmitter(module, math, plan, self.symbols, name, self.memory.slot_of, shared)
            em.light = is_light(step)
            em.defer_streaming = defer_streaming
            if st is not None:
                first_of[st.key] = (em, st)
            ems.append(em)
            if isinstance(step, Kernel):
                lower_kernel(em, plan, step, canon)
            elif isinstance(step, CopyStep):
                lower_copy(em, plan, step)
            elif isinstance(step, MatmulStep):
                lower_matmul(em, plan, step)
            elif isinstance(step, ScatterAddStep):
                lower_scatter_add(em, plan, step)
            else:
                raise NotImplementedError(type(step).__name__)
            calls.append(em.call())
            if em.streams_later:
                builds[em.fn.name] = functools.partial(streamed_body, plan, self.memory.slot_of, self.symbols,
                                                       canon, step, name, calls[-1])
        slot_of_input = {b.input_index: b.id for b in plan.buffers if b.kind is BufferKind.INPUT}
        program = program_text(plan, calls, self.symbols, slot_of_input, len(plan.buffers),
                               updated=overlap_checked(plan, self.memory))
        self.compile_stats["steps_reused"] = len(calls) - len(ems)
        return split_program(module, ems, frozenset(math.vec_used), len(shared), program, calls, builds)

    def _splits(self, source):
        """Whether this tier compiles the program as kernels and an entry (else as one module)."""
        return source.entry_text is not None and self.tier >= 1

    def _compile(self, source, key, tier, cancelled, known_only=False):
        """The entry's CompiledModule: each kernel found in the library (this process, the disk cache) or
        compiled there, then the entry, which calls them by name (or the whole program as one module).
        ``known_only``: None instead of compiling any kernel (or a program that does not split)."""
        if not self._splits(source):
            if known_only:
                return None
            self.step_calls = list(source.calls)
            mod = CompiledModule(source.whole, ENTRY_FUNCTIONS, source.vec_used, key, tier=tier,
                                 cancelled=cancelled, timings=self.compile_stats,
                                 manifest=_manifest([], self.step_calls))
        else:
            kernels, keys, how = [], [], {}
            for ks in source.kernels:
                k = LIBRARY.key(ks, tier)
                kmod, got = LIBRARY.compile(k, ks, tier, cancelled, self.compile_stats, use_disk=key is not None,
                                            known_only=known_only)
                if got == "unknown":
                    return None
                if kmod is None:
                    raise Cancelled("interpreter exiting")
                kernels.append(kmod)
                keys.append(k)
                how[got] = how.get(got, 0) + 1
            self.compile_stats.update({f"kernels_{k}": v for k, v in sorted(how.items())})
            text = _KERNEL_REF.sub(lambda m: f'@"{LIBRARY.symbol(keys[int(m.group(1))])}"', source.entry_text)
            self.step_calls = [StepCall(LIBRARY.symbol(keys[source.kernel_of[c.fn]]), c.dims, c.slots)
                               for c in source.calls]
            spent = {}
            mod = CompiledModule(text, ENTRY_FUNCTIONS, frozenset(), key, tier=ENTRY_TIER, cancelled=cancelled,
                                 timings=spent, kernels=kernels, manifest=_manifest(keys, self.step_calls))
            for k, v in spent.items():
                self.compile_stats[k] = self.compile_stats.get(k, 0.0) + v
            self.compile_stats["entry_llvm"] = sum(spent.values())
        if mod.cancelled:
            raise Cancelled("interpreter exiting")
        return mod

    def _from_disk(self, key):
        """The program's entry from the disk cache once every kernel it calls is loaded (else None: a miss)."""
        def load_kernels(manifest):
            stored = json.loads(manifest.decode("ascii"))
            mods = []
            for k in stored["kernels"]:
                mod = LIBRARY.lookup(k)
                if mod is None:
                    return None
                mods.append(mod)
            self.step_calls = [StepCall(fn, tuple(dims), tuple(slots)) for fn, dims, slots in stored["steps"]]
            return mods
        return CompiledModule.from_cache(key, ENTRY_FUNCTIONS, before_load=load_kernels)

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
        """The optimized IR of the entry module, then of each kernel module it calls."""
        return "\n".join([self.compiled.optimized_ir] + [k.optimized_ir for k in self.compiled.kernels])

    def asm(self):
        return "\n".join([self.compiled.asm()] + [k.asm() for k in self.compiled.kernels])

    def memory_plan(self, example_args=None):
        return self.memory.report(self.plan, example_args)

    def optimized_executable(self):
        """This executable: its code is final (api's call path inlines its driver)."""
        return self

    def inline_driver(self, names, shapes=None, prefix="_"):
        """The driver's lines on arrays named ``names`` (a driver.DriverSource: lines, globals, outputs)."""
        return DriverSource(self, names, shapes, prefix)

    def _check(self, env):
        from ...ir.interpret import check_constraints
        check_constraints(self.graph, env)

    def _outer_extents(self):
        """Each step's (outer loop length, elements of its whole loop nest): the loop split across threads and
        what decides whether splitting pays; (None, None) where it is never split."""
        canon = DimCanon(self.graph.constraints)
        extents = []
        for step in self.plan.steps:
            if isinstance(step, Kernel):
                extents.append((outer_extent(step, collapsible(self.plan, step, canon)), T.prod(step.domain)))
            elif isinstance(step, CopyStep) and step.src.shape:
                extents.append((step.src.shape[0], T.prod(step.src.shape)))
            else:
                extents.append((None, None))
        return extents

    def _parallel(self, arrays, symvals, env):
        """Run the steps one by one, each big one split across threads: its body called on slices of its first
        outer loop. Only a step whose own loop nest has PARALLEL_THRESHOLD elements is split (handing a small
        one to the pool costs more than it saves), and the others are called holding the GIL: a call that
        released it at every step waited up to a switch interval (5 ms) per step for it whenever another thread
        ran Python, as the optimized tier's background compile does (LeNet's 106-step second call: 105-144 ms
        against 60 ms on one thread)."""
        bufs = [a.ctypes.data for a in arrays]
        nt = self.num_threads
        pool = get_pool(nt - 1) if nt > 1 else None
        if self._extents is None:
            self._extents = self._outer_extents()
            self._step_fns = [(self._body_function(c, gil=False) if ext is not None else None,
                               self._body_function(c, gil=True), c)
                              for c, (ext, _) in zip(self.step_calls, self._extents)]
        for (fn, held, call), (ext, work) in zip(self._step_fns, self._extents):
            args = [symvals[k] for k in call.dims] + [bufs[i] for i in call.slots]
            n = T.eval_dim(ext, env) if ext is not None else None
            if n is None or n < 2 * nt or pool is None or T.eval_dim(work, env) < PARALLEL_THRESHOLD:
                held(0, -1, *args)
                continue
            bounds = [n * t // nt for t in range(nt + 1)]
            futs = [pool.submit(fn, bounds[t], bounds[t + 1], *args) for t in range(1, nt)]
            fn(bounds[0], bounds[1], *args)
            for f in futs:
                f.result()

    def _body_function(self, call, gil=False):
        """A ctypes function calling the body of ``call`` (in this program's module or a kernel it calls);
        ``gil``: one that keeps the GIL through the call (ctypes' PYFUNCTYPE), else one that releases it."""
        address = self.compiled.addresses.get(call.fn)
        for mod in self.compiled.kernels:
            address = address or mod.addresses.get(call.fn)
        address = address or self.compiled.engine.get_function_address(call.fn)
        if not address:
            raise RuntimeError(f"tracejit: the step body {call.fn} is missing from the compiled program")
        argtypes = [ctypes.c_int64] * (2 + len(call.dims)) + [ctypes.c_void_p] * len(call.slots)
        return (ctypes.PYFUNCTYPE if gil else ctypes.CFUNCTYPE)(None, *argtypes)(address)


def streamed_body(plan, roots, symbols, canon, step, name, call):
    """The KernelSource of a kernel step's body with its streamed stores, for the optimized tier: built again,
    taking its arguments in the order ``call`` (the shared build's) passes them; None when it does not stand
    alone or takes other arguments (the body without them is then compiled: correct, without streaming)."""
    module = ir.Module(name="tracejit")
    math = MathFunctions(module)
    em = StepEmitter(module, math, plan, symbols, name, roots)
    em.light = is_light(step)
    em.take_arguments_of(call)
    with gc_paused():
        lower_kernel(em, plan, step, canon)
    if em.call() != call:
        return None
    return kernel_source_of(module, em, frozenset(math.vec_used))


def _manifest(kernel_keys, calls) -> bytes:
    """What the disk cache keeps beside a program's object: the kernels it calls, and each step's StepCall (a
    call split across threads calls the bodies itself)."""
    return json.dumps({"kernels": list(kernel_keys),
                       "steps": [[c.fn, list(c.dims), list(c.slots)] for c in calls]}).encode("ascii")
