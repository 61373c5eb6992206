"""The Python side of a CPU executable's call: generated lines that read the lengths from the arrays' shapes,
check them, allocate the buffers (small ones with np.empty, big ones from the recycling pool), call the entry
(or split the steps across threads) and name the outputs.

The same lines serve twice: as the executable's own ``run(arrays)``, and inlined into a jitted function's
generated call path (api._generate_call), where they cost no Python call, no list of arguments and no list of
outputs: with a 10-element array the whole call is a few hundred nanoseconds, so each of these counts.
"""
from __future__ import annotations

import os
import re

import numpy as np

from ...ir import types as T
from ...ir.constraints import ConstraintKind
from ...lower.inplace import inputs_read
from ...lower.plan import BufferKind, MatmulStep
from . import blas
from .recycle import recycler

# (the thresholds, PARALLEL_THRESHOLD, POOL_MIN_BYTES and LP64_MAX, live in executable.py and are read when a
# driver is generated, so that a test may lower them)


class DriverSource:
    """The driver of ``exe`` (an LLVMExecutable) as lines of Python without indentation.

    ``names``: the local name of each input array; ``shapes``: {input index: local name of its shape tuple, already
    read}; ``prefix``: of every global the lines use (several drivers inlined into one call path must not collide).
    After construction: ``lines``, ``globals`` (the namespace the lines need) and ``outputs`` (the local name
    holding each output)."""

    def __init__(self, exe, names, shapes=None, prefix="_"):
        self.exe, self.plan, self.names, self.p = exe, exe.plan, names, prefix
        self.globals = {}
        self.lines = []
        g = exe.graph
        shapes = shapes or {}
        self.sym = {s: _ident(s) for s in g.symbols}
        for s, (i, ax) in g.symbols.items():
            self.lines.append(f"{self.sym[s]} = {shapes[i] if i in shapes else names[i] + '.shape'}[{ax}]")
        self.env = "{" + ", ".join(f"{s!r}: {self.sym[s]}" for s in g.symbols) + "}"
        self._length_checks()
        self._blas_limit_check()
        slots = self._buffers()
        self._run(slots)
        slot_of = exe.memory.slot_of
        self.outputs = [self.slot_name(slot_of.get(bid, bid)) for bid in self.plan.outputs]

    def py(self, d) -> str:
        return T.dim_py(d, lambda s: self.sym[s])

    def glob(self, name, value) -> str:
        self.globals[self.p + name] = value
        return self.p + name

    def _length_checks(self):
        """Inline comparisons; the dict of lengths is built only to word an error."""
        g = self.exe.graph
        conds = []
        for c in g.constraints:
            if c.kind is ConstraintKind.EQ and (c.a == 1 or c.b == 1):
                continue  # a static 1 broadcasts (interpret.check_constraints words the rules)
            pa, pb = self.py(c.a), self.py(c.b)
            conds.append(f"(-{pb} <= {pa} < {pb})" if c.kind is ConstraintKind.INDEX else f"({pa} == {pb})")
        if conds:
            self.lines.append(f"if not ({' and '.join(dict.fromkeys(conds))}): "
                              f"{self.glob('check', self.exe._check)}({self.env})")

    def _blas_limit_check(self):
        """Refuse, before any work, a matmul whose lengths a 32-bit BLAS cannot take."""
        steps = [st for st in self.plan.steps if isinstance(st, MatmulStep)]
        if not steps or blas.provider().int_bits >= 64:
            return
        dims = {d for st in steps for acc in (st.a, st.b, st.out) for d in acc.shape[-2:] + acc.strides[-2:]}
        limit = _limits().LP64_MAX
        conds = [f"{self.py(d)} > {limit}" for d in dims if not isinstance(d, int) or d > limit]
        if conds:
            self.lines.append(f"if {' or '.join(conds)}: {self.glob('blas_limit', _blas_limit)}"
                              f"({blas.provider().name!r}, {limit})")

    def slot_name(self, root) -> str:
        """The local name of a buffer's memory: an argument's own (updated in place) or a buffer's."""
        b = self.plan.buffers[root]
        return self.names[b.input_index] if b.kind is BufferKind.INPUT else f"b{root}"

    def _buffers(self) -> list:
        """Lines making every buffer the entry is given (inputs, constants, the error flag, outputs and
        intermediates); the slot names, in order."""
        slots = []
        slot_of = self.exe.memory.slot_of
        poison = bool(os.environ.get("TRACEJIT_POISON_BUFFERS"))
        empty = self.glob("empty", _poisoned_empty if poison else np.empty)
        done = set()
        for b in self.plan.buffers:
            if b.kind is BufferKind.INPUT:
                slots.append(self.names[b.input_index])
            elif b.kind is BufferKind.CONST:
                slots.append(self.glob(f"c{b.id}", b.const))
            elif b.kind is BufferKind.FLAG:
                self.lines.append(f"f{b.id} = {self.glob('zeros', np.zeros)}(1, {self.glob('i64', np.int64)})")
                slots.append(f"f{b.id}")
            else:
                root = slot_of.get(b.id, b.id)
                rb = self.plan.buffers[root]
                if root not in done and rb.kind is not BufferKind.INPUT:
                    done.add(root)
                    self.lines.append(f"b{root} = {self._allocation(root, rb, empty, poison)}")
                slots.append(self.slot_name(root))
        return slots

    def _allocation(self, root, rb, empty, poison) -> str:
        dt = self.glob(f"dt{root}", rb.dtype)
        # a 1-d length goes as an int: np.empty parses it faster than a tuple
        shape = self.py(rb.shape[0]) if len(rb.shape) == 1 else \
            "(" + ", ".join(self.py(d) for d in rb.shape) + ("," if len(rb.shape) == 1 else "") + ")"
        size, pool_min = T.prod(rb.shape), _limits().POOL_MIN_BYTES
        if isinstance(size, int) and size * rb.dtype.itemsize < pool_min:
            return f"{empty}({shape}, {dt})"
        # big buffers come from the recycling pool (no page faults on reuse); recycled buffers remember this
        # executable weakly: they are given back when it is garbage-collected
        take = self.glob("take", recycler.take_poisoned if poison else recycler.take)
        ref = self.exe.__dict__.get("_pool_owner")  # one weakref per executable, however often it is inlined
        if ref is None:
            ref = self.exe._pool_owner = recycler.owner(self.exe)
        owner = self.glob("owner", ref)
        nbytes = f"{self.py(size)} * {rb.dtype.itemsize}"
        return f"{take}({shape}, {dt}, {nbytes}, {owner}) if {nbytes} >= {pool_min} else {empty}({shape}, {dt})"

    def _run(self, slots):
        """Call the entry on this thread, or split the steps across threads; an argument updated in place that
        shares memory with another input is updated through a private copy (the caller copies the result back),
        as when nothing is updated in place."""
        g, exe = self.exe.graph, self.exe
        entry = self.glob("entry", exe._entry)
        call_args = ", ".join(slots)
        checked = overlap_checked(self.plan, exe.memory)
        updated = [self.names[j] for j in checked]
        overlap = self.glob("overlap", _overlap)
        shares = " or ".join(f"{overlap}({self.names[j]}, ({''.join(self.names[k] + ', ' for k in ks)}))"
                             for j, ks in checked.items())
        private = [f"    if {shares}: {', '.join(updated)} = {', '.join(a + '.copy()' for a in updated)}"] \
            if updated else []
        lines = self.lines
        lines.append(f"if {self._work()} < {_limits().PARALLEL_THRESHOLD} or {self.glob('nthreads', exe.num_threads)} == 1:")
        if updated:  # the entry checks: it runs nothing and returns the argument when memory is shared
            lines.append(f"    if {entry}({call_args}) is not None:")
            lines += ["    " + ln for ln in private]
            lines.append(f"        {entry}({call_args})")
        else:
            lines.append(f"    {entry}({call_args})")
        lines.append("else:")
        lines += private
        lines.append(f"    {self.glob('parallel', exe._parallel)}([{call_args}], "
                     f"[{', '.join(self.sym[s] for s in sorted(g.symbols))}], {self.env})")
        if self.plan.flag is not None:
            lines.append(f"if f{self.plan.flag}[0]: {self.glob('index_error', _index_error)}()")

    def _work(self) -> str:
        """Python source of the biggest loop-nest size of the program (decides threads or one call)."""
        sizes = []
        for step in self.plan.steps:
            dom = getattr(step, "domain", None)
            if dom is None and hasattr(step, "src"):
                dom = step.src.shape
            if dom:
                sizes.append(self.py(T.prod(dom)))
        sizes = list(dict.fromkeys(sizes))
        if not sizes:
            return "0"
        return sizes[0] if len(sizes) == 1 else f"max({', '.join(sizes)})"


def make_run(exe):
    """``run(arrays) -> [outputs]``: the executable's driver as a function (and its source)."""
    n_in = len(exe.graph.inputs)
    names = [f"a{i}" for i in range(n_in)]
    d = DriverSource(exe, names)
    lines = ["def run(args):"]
    if n_in:
        lines.append(f"    {', '.join(names)}{',' if n_in == 1 else ''} = args")
    lines += ["    " + ln for ln in d.lines]
    lines.append(f"    return [{', '.join(d.outputs)}]")
    src = "\n".join(lines)
    ns = dict(d.globals)
    exec(compile(src, "<tracejit driver>", "exec"), ns)
    return ns["run"], src


def _limits():
    from . import executable
    return executable


def overlap_checked(plan, memory) -> dict:
    """{input index of an argument updated in place: the other inputs read, whose memory it may share}."""
    read = inputs_read(plan)
    checks = {j: [k for k in sorted(read) if k != j] for j in sorted(memory.in_arguments)}
    return {j: ks for j, ks in checks.items() if ks}


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
