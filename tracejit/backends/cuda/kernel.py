"""A plan Kernel (lower/plan.py) as one CUDA kernel: the CPU backend's loop nest with its outer loop spread over
the device.

The meaning of ``KOp.phase``, ``Level`` and the axis maps is the CPU backend's: for each iteration of the outer
(kept) axes, phase by phase, an inner loop over the reduced axes (elementwise ops, stores, accumulators) and then
the tail on the results. How the outer loop is spread depends on the kernel:
- no reduced axes, or short static ones, or a column reduction (``x.sum(axis=0)``): one thread per outer
  iteration in a grid-stride loop. A column reduction's adjacent threads read adjacent columns, so its loads
  coalesce; its accumulator buffers (``Kernel.column_accs``) serve the CPU's loop order and stay unused here.
- long reduced axes (a row softmax, ``x.sum(axis=1)``, a split full reduction): one block per outer iteration
  (per chunk of a split reduction). The block's threads stride over the reduced elements, so loads coalesce, and
  combine their accumulators in a shared-memory tree; every thread then holds the results, so the next phase
  (softmax's exp after its max) runs on all of them. A later phase reads back an element it stored at inner
  level from the same thread that stored it (the element-to-thread map is the same in every phase), so phases
  need no barrier beyond the tree's. Tail stores are made by thread 0.
The scalar work is the scalar table's (lower/scalar.py), spelled by ``CudaScalarOps``.
"""
from __future__ import annotations

import numpy as np

from ...ir import types as T
from ...ir.primitives import PRIMS
from ...lower import scalar as S
from ...lower.dims import GATHERED, gather_source_axes
from ...lower.plan import Access, DimLength, Kernel, Level, ScalarConst, memory_access
from .scalar import _SUFFIX, OVERRIDES, CudaScalarOps, literal
from .source import TPB, KernelSource, Launchable

BLOCK_MIN_REDUCED = 64  # a reduced extent known to be shorter runs one thread per output (a block would idle)

_RED_INIT = {
    "sum": lambda dt: 0, "prod": lambda dt: 1, "any": lambda dt: False, "all": lambda dt: True,
    "max": lambda dt: -np.inf if dt.kind == "f" else (False if dt == T.BOOL else np.iinfo(dt).min),
    "min": lambda dt: np.inf if dt.kind == "f" else (True if dt == T.BOOL else np.iinfo(dt).max),
}
_RED_INIT["argmax"], _RED_INIT["argmin"] = _RED_INIT["max"], _RED_INIT["min"]


def kernel_name(k: Kernel) -> str:
    prims = [o.eqn.prim for o in k.ops[:4]]
    return ("fused_" + "_".join(prims) if prims else "store_scalars")[:60]


def _is_reduction(o) -> bool:
    return PRIMS[o.eqn.prim].kind == "reduce"


class _Accumulator:
    """One reduction's running value (and argmax/argmin's index) in a thread's registers."""

    def __init__(self, w: "_KernelWriter", kop):
        self.w, self.kop = w, kop
        e = kop.eqn
        self.prim, self.in_dt, self.out_dt = e.prim, np.dtype(e.inputs[0].dtype), np.dtype(e.out.dtype)
        self.acc_dt = self.out_dt
        if self.prim in ("sum", "prod") and self.out_dt == T.FLOAT32:
            self.acc_dt = np.dtype(T.FLOAT64)  # as the CPU: float32 sums accumulate in float64
        if self.out_dt == T.FLOAT16:
            self.acc_dt = T.FLOAT32  # as numpy's float16 reductions (rounded once at the end)
        if self.prim in ("argmax", "argmin"):
            self.acc_dt = T.FLOAT32 if self.in_dt == T.FLOAT16 else self.in_dt
        self.acc = f"acc{e.out.id}"
        self.index = f"ai{e.out.id}" if self.prim in ("argmax", "argmin") else None

    def init(self):
        self.w.src.put(f"{self.acc} = {literal(_RED_INIT[self.prim](self.acc_dt), self.acc_dt)}")
        if self.index:
            self.w.src.put(f"{self.index} = _cast_i64(0)")

    def update(self, v, counter):
        src, ops = self.w.src, self.w.ops
        if self.index:  # the first best element wins; a nan beats any number (numpy's argmax)
            v = ops.convert(v, self.in_dt, self.acc_dt)  # float16 compares in float32
            src.splice(ops)
            op = ">" if self.prim == "argmax" else "<"
            better = f"{v} {op} {self.acc}"
            if self.acc_dt.kind == "f":
                better = f"({better}) or ({v} != {v} and {self.acc} == {self.acc})"
            src.put(f"if {better}:", f"    {self.acc} = {v}", f"    {self.index} = {counter}")
            return
        if self.prim in ("any", "all"):
            v = ops.convert(v, self.in_dt, T.BOOL)
            new = (ops.or_ if self.prim == "any" else ops.and_)(T.BOOL, self.acc, v)
        else:
            v = ops.convert(v, self.in_dt, self.acc_dt)
            if self.prim == "sum":
                new = ops.add(self.acc_dt, self.acc, v)
            elif self.prim == "prod":
                new = ops.mul(self.acc_dt, self.acc, v)
            else:
                prim = "maximum" if self.prim == "max" else "minimum"
                new = S.lower(ops, prim, [self.acc_dt] * 2, self.acc_dt, [self.acc, v], OVERRIDES)
        src.splice(ops)
        src.put(f"{self.acc} = {new}")

    def combine(self, other, other_index):
        """Fold another thread's accumulator (and index) into this one: the block tree's step."""
        src, ops = self.w.src, self.w.ops
        acc, ai = self.acc, self.index
        if ai:  # the best value, ties and nans to the smaller index (numpy's first occurrence)
            op = ">" if self.prim == "argmax" else "<"
            take = f"{other} {op} {acc} or ({other} == {acc} and {other_index} < {ai})"
            if self.acc_dt.kind == "f":
                take = (f"({other} != {other} and ({acc} == {acc} or {other_index} < {ai})) or "
                        f"({acc} == {acc} and ({take}))")
            src.put(f"if {take}:", f"    {acc} = {other}", f"    {ai} = {other_index}")
            return
        if self.prim in ("any", "all"):
            new = (ops.or_ if self.prim == "any" else ops.and_)(T.BOOL, acc, other)
        elif self.prim in ("sum", "prod"):
            new = (ops.add if self.prim == "sum" else ops.mul)(self.acc_dt, acc, other)
        else:
            prim = "maximum" if self.prim == "max" else "minimum"
            new = S.lower(ops, prim, [self.acc_dt] * 2, self.acc_dt, [acc, other], OVERRIDES)
        src.splice(ops)
        src.put(f"{acc} = {new}")

    def shared(self):
        """Declarations of the shared arrays this accumulator's tree uses."""
        out = [f"sh{self.acc} = cuda.shared.array({TPB}, _T_{_SUFFIX[self.acc_dt]})"]
        if self.index:
            out.append(f"sh{self.index} = cuda.shared.array({TPB}, _T_i64)")
        return out

    def block_tree(self):
        """Combine the block's accumulators; every thread ends with the result."""
        src, acc, ai = self.w.src, self.acc, self.index
        src.put(f"sh{acc}[tid] = {acc}", *([f"sh{ai}[tid] = {ai}"] if ai else []), "cuda.syncthreads()",
                f"s = {TPB // 2}", "while s > 0:", "    if tid < s:")
        src.depth += 2
        other, oi = src.fresh("o"), (src.fresh("oi") if ai else None)
        src.put(f"{other} = sh{acc}[tid + s]", *([f"{oi} = sh{ai}[tid + s]"] if ai else []))
        self.combine(other, oi)
        src.put(f"sh{acc}[tid] = {acc}", *([f"sh{ai}[tid] = {ai}"] if ai else []))
        src.depth -= 1
        src.put("cuda.syncthreads()", "s = s // 2")
        src.depth -= 1
        src.put(f"{acc} = sh{acc}[0]", *([f"{ai} = sh{ai}[0]"] if ai else []), "cuda.syncthreads()")

    def result(self) -> str:
        if self.index:
            return self.index
        v = self.w.ops.convert(self.acc, self.acc_dt, self.out_dt)
        self.w.src.splice(self.w.ops)
        return v


class _KernelWriter:
    """Writes one plan Kernel's source; the methods mirror the CPU backend's ``lower_kernel``."""

    def __init__(self, plan, k: Kernel):
        self.plan, self.k = plan, k
        self.src = KernelSource(plan, kernel_name(k))
        self.ops = CudaScalarOps()
        self.producers = {o.eqn.out.id: o for o in k.ops}
        self.stored: dict = {}
        for v, acc in k.stores:
            self.stored.setdefault(v.id, []).append(acc)
        self.block = uses_blocks(k)

    # operands ---------------------------------------------------------------------------------
    def operand(self, x, cons_axes, idx, values, phase, q):
        if x.id in values:
            return values[x.id]
        p = self.producers.get(x.id)
        if p is not None and x.id in self.stored and p.phase < phase and p.level is Level.INNER:
            acc = self.stored[x.id][0]
            return self.src.load(acc, idx, self.acc_axes(x, cons_axes, q))
        if p is not None:
            raise AssertionError(f"value {x} used before it is computed in its kernel")
        s = self.plan.sources.get(x.id)
        if isinstance(s, ScalarConst):
            return literal(s.value, s.dtype)
        if isinstance(s, DimLength):
            return f"_cast_i64({self.src.dim(s.dim)})"
        return self.src.load(memory_access(s), idx, self.acc_axes(x, cons_axes, q))

    @staticmethod
    def acc_axes(x, cons_axes, q):
        """Domain axis of each dim of operand x read by an op whose output has axis map ``cons_axes``."""
        if q is None:
            q = len(cons_axes)
        off = q - x.ndim
        return tuple(None if x.shape[j] == 1 else cons_axes[j + off] for j in range(x.ndim))

    def eval_op(self, o, idx, values, phase):
        e = o.eqn
        if e.prim == "reshape":  # a reshape fused in a kernel only adds or drops size-1 dims
            x = e.inputs[0]
            return values[x.id] if x.id in values else self.operand(x, o.axes, idx, values, phase, None)
        if e.prim == "gather":
            return self.gather(e, o, idx, values, phase)
        if e.prim == "iota":  # the index of its axis
            return f"_cast_i64({idx[o.axes[0]]})" if o.axes[0] is not None else "_cast_i64(0)"
        q = e.out.ndim
        names = {x.id: self.operand(x, o.axes, idx, values, phase, q) for x in e.inputs}
        out = f"v{e.out.id}"
        self.ops.emit(e, names, out)
        self.src.splice(self.ops)
        return out

    def gather(self, e, o, idx, values, phase):
        """``take(x, ind, axis)``: x's dims before the axis follow the output's, the axis reads the index."""
        x, ind = e.inputs
        ax = e.p["axis"]
        iv = self.operand(ind, tuple(o.axes[ax:ax + ind.ndim]), idx, values, phase, ind.ndim)
        iv = self.src.checked_index(iv, self.src.dim(x.shape[ax]))
        local = dict(idx)
        local[GATHERED] = iv
        return self.src.load(self.plan.sources[x.id].access, local, gather_source_axes(x.shape, ax, o.axes, ind.ndim))

    def do_stores(self, o, idx, v, tail=False):
        for acc in self.stored.get(o.eqn.out.id, ()):
            if tail and self.block:  # every thread holds the tail's values: one stores them
                self.src.put("if tid == 0:")
                self.src.depth += 1
            self.src.store(acc, idx, self.acc_axes(o.eqn.out, o.axes, None), v)
            if tail and self.block:
                self.src.depth -= 1

    # loops ------------------------------------------------------------------------------------
    def run_phases(self, idx):
        k, values = self.k, {}
        for phase in range(k.nphases):
            ops = [o for o in k.ops if o.phase == phase]
            inner = [o for o in ops if o.level is Level.INNER]
            accs = [_Accumulator(self, o) for o in ops if _is_reduction(o)]
            tail = [o for o in ops if o.level is Level.TAIL and not _is_reduction(o)]
            for a in accs:
                a.init()
            counter = f"cnt{phase}" if any(a.index for a in accs) else None  # argmax's position
            if counter:
                self.src.put(f"{counter} = _cast_i64(0)")
            if self.block:
                self.strided_loop(dict(idx), values, phase, inner, accs)
                for a in accs:
                    a.block_tree()
            elif k.red_axes:
                self.reduced_loops(list(k.red_axes), dict(idx), values, phase, inner, accs, counter)
            else:
                self.inner_body(idx, values, phase, inner, accs, counter)
            if k.chunks:  # this chunk's raw accumulators: the epilogue kernel combines them
                for a in accs:
                    part = Access(k.partials[a.kop.eqn.out.id], (k.chunks,), (1,), 0)
                    if self.block:
                        self.src.put("if tid == 0:")
                    self.src.depth += self.block
                    self.src.store(part, {"chunk": "chunk"}, ("chunk",), a.acc)
                    self.src.depth -= self.block
                continue
            for a in accs:
                v = values[a.kop.eqn.out.id] = a.result()
                self.do_stores(a.kop, idx, v, tail=True)
            for o in tail:
                v = values[o.eqn.out.id] = self.eval_op(o, idx, values, phase)
                self.do_stores(o, idx, v, tail=True)
        for v, acc in k.stores:  # stores of scalars and lengths (a constant output)
            if v.id in k.scalars:
                s = k.scalars[v.id]
                val = literal(s.value, s.dtype) if isinstance(s, ScalarConst) else f"_cast_i64({self.src.dim(s.dim)})"
                self.src.store(acc, idx, tuple(None for _ in acc.shape), val)

    def inner_body(self, idx, values, phase, inner, accs, counter, count=True):
        for o in inner:
            v = values[o.eqn.out.id] = self.eval_op(o, idx, values, phase)
            self.do_stores(o, idx, v)
        for a in accs:
            x = a.kop.eqn.inputs[0]
            a.update(self.operand(x, a.kop.in_axes, idx, values, phase, x.ndim), counter)
        if counter and count:
            self.src.put(f"{counter} += 1")

    def reduced_loops(self, axes_left, idx, values, phase, inner, accs, counter):
        a = axes_left[0]
        src = self.src
        n = src.dim(self.k.domain[a])
        lo, hi = "0", n
        if self.k.chunks and a == self.k.red_axes[0]:  # this chunk's share of the first reduced axis
            per, lo, hi = src.fresh("per"), src.fresh("lo"), src.fresh("hi")
            src.put(f"# a split reduction: axis {a} in {self.k.chunks} parts, one per thread",
                    f"{per} = ({n} + {self.k.chunks - 1}) // {self.k.chunks}", f"{lo} = min(chunk * {per}, {n})",
                    f"{hi} = min({lo} + {per}, {n})")
        idx[a] = f"i{a}"
        src.put(f"for i{a} in range({lo}, {hi}):")
        src.depth += 1
        if len(axes_left) == 1:
            self.inner_body(idx, dict(values), phase, inner, accs, counter)
        else:
            self.reduced_loops(axes_left[1:], idx, values, phase, inner, accs, counter)
        src.depth -= 1

    def strided_loop(self, idx, values, phase, inner, accs):
        """The block's threads stride over the flattened reduced elements (of this chunk, for a split one); the
        flat position is argmax's index, as the CPU's counter."""
        k, src = self.k, self.src
        red = list(k.red_axes)
        dims = [src.dim(k.domain[a]) for a in red]
        first = dims[0]
        if k.chunks:  # this chunk's share of the first reduced axis
            n = dims[0]
            src.put(f"# a split reduction: axis {red[0]} in {k.chunks} parts, one per block",
                    f"per = ({n} + {k.chunks - 1}) // {k.chunks}", f"lo = min(chunk * per, {n})",
                    f"hi = min(lo + per, {n})")
            first = "(hi - lo)"
        src.put(f"r = _cast_i64(tid)", f"while r < {' * '.join([first] + dims[1:])}:")
        src.depth += 1
        src.put("_q = r")
        for a, d in zip(reversed(red[1:]), reversed(dims[1:])):
            src.put(f"i{a} = _q % {d}", f"_q = _q // {d}")
        src.put(f"i{red[0]} = _q + lo" if k.chunks else f"i{red[0]} = _q")
        for a in red:
            idx[a] = f"i{a}"
        self.inner_body(idx, dict(values), phase, inner, accs, "r" if any(a.index for a in accs) else None,
                        count=False)
        src.put(f"r += {TPB}")
        src.depth -= 1

    def write_blocks(self) -> Launchable:
        """One block per outer iteration (per chunk of a split reduction), blocks striding over them."""
        k, src = self.k, self.src
        accs = [_Accumulator(self, o) for o in k.ops if _is_reduction(o)]
        src.put(*[ln for a in accs for ln in a.shared()], "tid = cuda.threadIdx.x", "b = cuda.blockIdx.x")
        outer = k.outer_axes
        if k.chunks:
            total, dims, names, idx = str(k.chunks), [str(k.chunks)], ["chunk"], {a: "0" for a in outer}
        else:
            dims = [src.dim(k.domain[a]) for a in outer]
            total, names, idx = " * ".join(dims) or "1", [f"i{a}" for a in outer], {a: f"i{a}" for a in outer}
        src.put(f"while b < {total}:")
        src.depth += 1
        src.unravel("b", dims, names)
        self.run_phases(idx)
        src.put("b += cuda.gridDim.x")
        src.depth -= 1
        return src.finish()

    def write(self) -> Launchable:
        k, src = self.k, self.src
        outer = k.outer_axes
        if self.block:
            return self.write_blocks()
        if k.chunks:  # a split full reduction: outer axes are all of length 1
            src.grid_loop(str(k.chunks), [str(k.chunks)], ["chunk"])
            idx = {a: "0" for a in outer}
        else:
            dims = [src.dim(k.domain[a]) for a in outer]
            src.grid_loop(" * ".join(dims) or "1", dims, [f"i{a}" for a in outer])
            idx = {a: f"i{a}" for a in outer}
        self.run_phases(idx)
        src.end_loop()
        return src.finish()


def uses_blocks(k: Kernel) -> bool:
    """A block per outer iteration pays where the reduced extent is long (or unknown); not for column kernels,
    whose threads already read adjacent memory."""
    if not k.red_axes or k.column:
        return False
    n = T.prod(tuple(k.domain[a] for a in k.red_axes))
    return not (isinstance(n, int) and n < BLOCK_MIN_REDUCED)


def threads_of(k: Kernel):
    """The length (maybe symbolic) of the kernel's grid-stride loop: its outer iterations."""
    if k.chunks:
        return k.chunks
    return T.prod(tuple(k.domain[a] for a in k.outer_axes))


def write_kernel(plan, k: Kernel) -> Launchable:
    """The CUDA kernel computing plan Kernel ``k``."""
    return _KernelWriter(plan, k).write()
