"""The CPU executable of one program: its step functions built from a Plan (or loaded from the disk cache), the
METH_FASTCALL entry, and a driver generated in Python that checks lengths, allocates outputs and calls the entry
(or splits the steps across threads)."""
from __future__ import annotations

import ctypes
import os
import re
import sys
import time

import llvmlite.ir as ir
import numpy as np

from ...ir import types as T
from ...ir.constraints import ConstraintKind
from ...lower import plan_graph
from ...lower.dims import DimCanon
from ...lower.plan import BufferKind, CopyStep, Kernel, MatmulStep, ScatterAddStep
from . import blas
from .emitter import StepEmitter
from .entry import emit_entry, make_builtin
from .jobs import Cancelled
from ...lower.inplace import inputs_read
from .kernel_library import LIBRARY, split_program
from .kernels import collapsible, lower_kernel, outer_extent
from .module import CompiledModule, codegen_fingerprint, ensure_blas_symbols
from .scalar import MathFunctions
from .steps import lower_copy, lower_matmul, lower_scatter_add
from .recycle import recycler
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
# The entry module of a program split into kernels (its wrappers and tj_entry: loads of pointers and lengths, then
# calls) compiles at the quick tier's settings in both tiers: its code is no faster at O3, which took ~4x as long
ENTRY_TIER = 0
_KERNEL_REF = re.compile(r'@"__tjk(\d+)__"')  # the entry text's references to its kernels (kernel_library)
KERNEL_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


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
        names = [f"tj_step{i}" for i in range(len(plan.steps))]
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
        self.compiled = self._from_disk(key, names) if key else None
        self.compile_stats["disk_cache"] = "hit" if self.compiled is not None else "miss"
        if self.compiled is None and cache_only and not known_kernels_only:
            return
        if self.compiled is None:
            if source is None:
                t0 = time.perf_counter()
                source = self._build_ir(names, canon, cancelled)
                self.compile_stats["ir_build"] = time.perf_counter() - t0
            self.source = source
            self._ir_text = source.entry_text if self._splits(source) else source.whole
            self.num_functions = source.num_functions
            self.compile_stats.update(functions=self.num_functions,
                                      dedup_hits=len(plan.steps) - self.num_functions)
            self.compiled = self._compile(source, names, key, tier, cancelled, known_only=cache_only)
            if self.compiled is None:
                return
        self._entry, self._mdef = make_builtin(self.compiled.addresses["tj_entry"], owner=self.compiled)
        self._kernels = [KERNEL_CFUNC(self.compiled.addresses[n]) for n in names]
        self._extents = None  # made by the first call split across threads (most programs never are)
        self.num_threads = num_threads()
        self.run = self._make_driver()

    def _build_ir(self, names, canon, cancelled):
        """(module IR text, math functions it calls, distinct step functions): the same for both tiers."""
        plan = self.plan
        module = ir.Module(name="tracejit")
        math = MathFunctions(module)  # both tiers call the vector library's symbols (they link different bodies)
        fns, ems, shared = [], [], {}
        for name, step in zip(names, plan.steps):
            if cancelled is not None and cancelled():
                raise Cancelled("interpreter exiting")
            em = StepEmitter(module, math, plan, self.symbols, name, self.memory.slot_of, shared)
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
            fns.append(em.wrapper)
        slot_of_input = {b.input_index: b.id for b in plan.buffers if b.kind is BufferKind.INPUT}
        emit_entry(module, plan, fns, self.symbols, slot_of_input, len(plan.buffers),
                   updated=self._overlap_checked())
        return split_program(module, ems, frozenset(math.vec_used), len(shared))

    def _overlap_checked(self):
        """{input index of an argument updated in place: the other inputs read, whose memory it may share}."""
        read = inputs_read(self.plan)
        checks = {j: [k for k in sorted(read) if k != j] for j in sorted(self.memory.in_arguments)}
        return {j: ks for j, ks in checks.items() if ks}

    def _splits(self, source):
        """Whether this tier compiles the program as kernels and an entry (else as one module)."""
        return source.entry_text is not None and self.tier >= 1

    def _compile(self, source, names, key, tier, cancelled, known_only=False):
        """The entry's CompiledModule: each kernel found in the library (this process, the disk cache) or
        compiled there, then the entry, which calls them by name (or the whole program as one module).
        ``known_only``: None instead of compiling any kernel (or a program that does not split)."""
        fn_names = names + ["tj_entry"]
        if not self._splits(source):
            if known_only:
                return None
            mod = CompiledModule(source.whole, fn_names, source.vec_used, key, tier=tier, cancelled=cancelled,
                                 timings=self.compile_stats)
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
            spent = {}
            mod = CompiledModule(text, fn_names, frozenset(), key, tier=ENTRY_TIER, cancelled=cancelled,
                                 timings=spent,
                                 kernels=kernels, manifest="\n".join(keys).encode())
            for k, v in spent.items():
                self.compile_stats[k] = self.compile_stats.get(k, 0.0) + v
            self.compile_stats["entry_llvm"] = sum(spent.values())
        if mod.cancelled:
            raise Cancelled("interpreter exiting")
        return mod

    @staticmethod
    def _from_disk(key, names):
        """The program's entry from the disk cache once every kernel it calls is loaded (else None: a miss)."""
        def load_kernels(manifest):
            mods = []
            for k in manifest.decode("ascii").split():
                mod = LIBRARY.lookup(k)
                if mod is None:
                    return None
                mods.append(mod)
            return mods
        return CompiledModule.from_cache(key, names + ["tj_entry"], before_load=load_kernels)

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
        consts = {}
        slots = self._buffer_lines(py, lines, consts)
        slot_vals = self.memory.slot_of
        work = self._work_expr(py)
        call_args = ", ".join(slots)
        checked = self._overlap_checked()
        updated = [f"a{j}" for j in checked]
        # an argument updated in place that shares memory with another input is updated through a private
        # copy (the caller copies the result back), as when nothing is updated in place
        shares = " or ".join(f"_overlap(a{j}, ({''.join(f'a{k}, ' for k in ks)}))" for j, ks in checked.items())
        private = [f"        if {shares}: {', '.join(updated)} = {', '.join(a + '.copy()' for a in updated)}"] \
            if updated else []
        lines.append(f"    if {work} < {PARALLEL_THRESHOLD} or _nthreads == 1:")
        if updated:  # the entry checks: it runs nothing and returns the argument when memory is shared
            lines.append(f"        if _entry({call_args}) is not None:")
            lines += ["    " + ln for ln in private]
            lines.append(f"            _entry({call_args})")
        else:
            lines.append(f"        _entry({call_args})")
        lines.append("    else:")
        lines += private
        lines.append(f"        _parallel([{call_args}], [{', '.join(sym_src[s] for s in sorted(g.symbols))}], "
                     f"{{{env_items}}})")
        if plan.flag is not None:
            lines.append(f"    if f{plan.flag}[0]: _index_error()")
        outs = [self._slot_name(slot_vals.get(bid, bid)) for bid in plan.outputs]
        lines.append(f"    return [{', '.join(outs)}]")
        src = "\n".join(lines)
        poison = bool(os.environ.get("TRACEJIT_POISON_BUFFERS"))
        # recycled buffers remember this executable weakly: they are given back when it is garbage-collected
        owner = recycler.owner(self)
        ns = {"_entry": self._entry, "_take": recycler.take_poisoned if poison else recycler.take, "_owner": owner,
              "_empty": _poisoned_empty if poison else np.empty, "_zeros": np.zeros, "_i64": np.int64,
              "_check": self._check, "_parallel": self._parallel,
              "_nthreads": self.num_threads, "_index_error": _index_error, "_blas_limit": _blas_limit,
              "_overlap": _overlap, **consts}
        exec(compile(src, "<tracejit driver>", "exec"), ns)
        self.driver_source = src
        return ns["run"]

    def _buffer_lines(self, py, lines, consts):
        """Driver lines that make every buffer the entry is given (inputs, constants, the error flag, outputs and
        intermediates: small ones from np.empty, big ones from the recycling pool); the slot names, in order."""
        slots = []
        slot_vals = self.memory.slot_of
        alloc_done = set()
        for b in self.plan.buffers:
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
                if root not in alloc_done and self.plan.buffers[root].kind is not BufferKind.INPUT:
                    alloc_done.add(root)
                    rb = self.plan.buffers[root]
                    shape = "(" + ", ".join(py(d) for d in rb.shape) + ("," if len(rb.shape) == 1 else "") + ")"
                    consts[f"dt{root}"] = rb.dtype
                    nbytes = f"{py(T.prod(rb.shape))} * {rb.dtype.itemsize}"
                    if isinstance(T.prod(rb.shape), int) and T.prod(rb.shape) * rb.dtype.itemsize < POOL_MIN_BYTES:
                        lines.append(f"    b{root} = _empty({shape}, dt{root})")
                    else:  # big buffers come from the recycling pool (no page faults on reuse)
                        lines.append(f"    b{root} = _take({shape}, dt{root}, {nbytes}, _owner) if {nbytes} >= "
                                     f"{POOL_MIN_BYTES} else _empty({shape}, dt{root})")
                slots.append(self._slot_name(root))
        return slots

    def _slot_name(self, root):
        """The driver's name of a buffer's memory: an argument's own (updated in place) or a buffer's."""
        b = self.plan.buffers[root]
        return f"a{b.input_index}" if b.kind is BufferKind.INPUT else f"b{root}"

    def _blas_limit_check(self, py):
        """Driver lines refusing, before any work, a matmul whose lengths a 32-bit BLAS cannot take."""
        steps = [st for st in self.plan.steps if isinstance(st, MatmulStep)]
        if not steps:
            return []
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
        from ...ir.interpret import check_constraints
        check_constraints(self.graph, env)

    def _outer_extents(self):
        """Each step's outer loop length (the loop split across threads), or None where it is not split."""
        canon = DimCanon(self.graph.constraints)
        extents = []
        for step in self.plan.steps:
            if isinstance(step, Kernel):
                extents.append(outer_extent(step, collapsible(self.plan, step, canon)))
            elif isinstance(step, CopyStep):
                extents.append(step.src.shape[0] if step.src.shape else None)
            else:
                extents.append(None)
        return extents

    def _parallel(self, arrays, symvals, env):
        nslots = len(arrays)
        bufs = (ctypes.c_void_p * max(nslots, 1))(*[a.ctypes.data for a in arrays])
        dims = (ctypes.c_int64 * max(len(symvals), 1))(*symvals)
        nt = self.num_threads
        pool = get_pool(nt - 1) if nt > 1 else None
        if self._extents is None:
            self._extents = self._outer_extents()
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


def _overlap(a, others):
    """Whether an argument updated in place may share memory with one of the other inputs."""
    return any(np.may_share_memory(a, x) for x in others)


def _index_error():
    raise IndexError("an integer-array index is out of bounds for the axis it indexes")
