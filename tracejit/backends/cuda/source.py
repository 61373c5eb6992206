"""Generated CUDA kernels: the source builder every plan step writes into, and the compiled kernel it becomes.

A kernel is Python source compiled by numba.cuda. Its parameters are the flat device arrays of the plan buffers
it touches and one int64 per symbolic length it needs (shape, stride or offset expressions of the plan's
Accesses), evaluated on the host at launch: the source depends on the plan alone, so it compiles once per
executable, and a new length costs no compile. Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the same
source runs with numpy-backed helpers.
"""
from __future__ import annotations

import math
import threading

import numpy as np
from numba import cuda

from ...ir import types as T
from ...lower.plan import Access
from .check import simulator_enabled
from .scalar import _SUFFIX, _quiet, math_namespace

SIM = simulator_enabled()
TPB = 8 if SIM else 256  # threads per block
MAX_BLOCKS = 2 if SIM else 32 * 132  # grid-stride loops: a few waves of blocks cover any length
# a full reduction's pieces, one block each: four blocks per multiprocessor of an H100/H200 (132 SMs); the
# simulator runs every thread in Python, so it keeps the CPU's few
SPLIT_CHUNKS = 16 if SIM else 4 * 132
NUMBA_TYPE = {dt: "boolean" if dt == T.BOOL else dt.name for dt in T.SUPPORTED_DTYPES}


def _namespace() -> dict:
    """Globals of every generated kernel: casts, math and constants, bound per target."""
    import numba
    ns = {"cuda": cuda, "_INF": math.inf, "_NAN": math.nan}
    for dt, suf in _SUFFIX.items():
        ns["_T_" + suf] = getattr(numba.types, NUMBA_TYPE[dt])
        if dt == T.BOOL:
            continue
        if SIM:
            ns["_cast_" + suf] = _quiet(lambda x, dt=dt: np.asarray(x).astype(dt)[()])
        else:
            ns["_cast_" + suf] = getattr(numba.types, NUMBA_TYPE[dt])
    ns.update(math_namespace(SIM))
    return ns


_NS = None
_COMPILED: dict = {}
_LOCK = threading.Lock()


class GeneratedKernel:
    """One generated kernel: its source, numba signature and compiled dispatcher (compiled once per source)."""

    def __init__(self, name, source, argtypes):
        self.name, self.source, self.argtypes = name, source, tuple(argtypes)
        self.sig = f"void({', '.join(self.argtypes)})"
        self._fn = None

    @property
    def pyfunc(self):
        global _NS
        if _NS is None:
            _NS = _namespace()
        ns = dict(_NS)
        exec(compile(self.source, f"<tracejit cuda kernel {self.name}>", "exec"), ns)
        return ns[self.name]

    def compiled(self):
        if self._fn is None:
            self._fn = cuda.jit(self.pyfunc) if SIM else cuda.jit(self.sig)(self.pyfunc)
        return self._fn

    def __getitem__(self, config):
        return self.compiled()[config]

    def ptx(self, cc=None) -> str:
        """PTX for this kernel (needs NVVM, not a GPU: sm_90 unless a GPU says otherwise); '' under the simulator."""
        if SIM:
            return ""
        if cc is None:
            cc = cuda.get_current_device().compute_capability if cuda.is_available() else (9, 0)
        ptx, _ = cuda.compile_ptx(self.pyfunc, self.sig, cc=cc)
        return ptx


def generated_kernel(name, source, argtypes) -> GeneratedKernel:
    """The kernel for this source and signature, shared by every executable that generates the same text."""
    key = (source, tuple(argtypes))
    k = _COMPILED.get(key)
    if k is None:
        with _LOCK:
            k = _COMPILED.setdefault(key, GeneratedKernel(name, source, argtypes))
    return k


def blocks_for(n: int) -> int:
    return max(1, min(MAX_BLOCKS, -(-n // TPB)))


class Param:
    """A kernel parameter: a plan buffer (its flat device array) or a length expression (evaluated at launch)."""
    __slots__ = ("name", "buf", "dim")

    def __init__(self, name, buf=None, dim=None):
        self.name, self.buf, self.dim = name, buf, dim

    def value(self, arrays, env):
        return arrays[self.buf] if self.buf is not None else int(T.eval_dim(self.dim, env))


class KernelSource:
    """Lines of one kernel being written, with the parameters its lines use (added on first use)."""

    def __init__(self, plan, name):
        self.plan, self.name = plan, name
        self.lines: list = []
        self.depth = 1
        self.params: dict = {}  # name -> (Param, numba type)
        self._dims: dict = {}
        self._n = 0

    # parameters -------------------------------------------------------------------------------
    def buf(self, bid) -> str:
        name = f"B{bid}"
        if name not in self.params:
            dt = self.plan.buffers[bid].dtype
            self.params[name] = (Param(name, buf=bid), f"{NUMBA_TYPE[np.dtype(dt)]}[::1]")
        return name

    def dim(self, d) -> str:
        """Source of a length: an int literal, or the parameter holding its value."""
        if isinstance(d, (int, np.integer)):
            return str(int(d)) if d >= 0 else f"({int(d)})"
        name = self._dims.get(d)
        if name is None:
            name = self._dims[d] = f"n{len(self._dims)}"
            self.params[name] = (Param(name, dim=d), "int64")
        return name

    # lines ------------------------------------------------------------------------------------
    def fresh(self, prefix="t") -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def put(self, *lines):
        pad = "    " * self.depth
        self.lines.extend(pad + ln for ln in lines)

    def splice(self, ops):
        """Move the statements a CudaScalarOps wrote into the kernel at the current depth."""
        self.put(*ops.lines)
        ops.lines.clear()

    def grid_loop(self, total: str, dims: list, names: list):
        """Open a grid-stride loop over ``total`` threads of work, unravelling the thread index (C order) over
        ``dims`` into ``names``; ``end_loop`` closes it."""
        self.put("t = cuda.grid(1)", "nthreads = cuda.gridsize(1)", f"while t < {total}:")
        self.depth += 1
        self.unravel("t", dims, names)

    def unravel(self, var: str, dims: list, names: list):
        """``names`` = the C-order multi-index of the flat index ``var`` over ``dims``."""
        if len(dims) == 1:
            self.put(f"{names[0]} = {var}")
        elif dims:
            self.put(f"_r = {var}")
            for d, nm in zip(reversed(dims[1:]), reversed(names[1:])):
                self.put(f"{nm} = _r % {d}", f"_r = _r // {d}")
            self.put(f"{names[0]} = _r")

    def end_loop(self):
        self.put("t += nthreads")
        self.depth -= 1

    def address(self, acc: Access, idx: dict, axes) -> str:
        """Source of the flat element of ``acc`` at loop indices ``idx`` (``axes[j]``: the index of dim j)."""
        terms = [] if (isinstance(acc.offset, int) and acc.offset == 0) else [self.dim(acc.offset)]
        for j, (d, s) in enumerate(zip(acc.shape, acc.strides)):
            if j >= len(axes) or d == 1 or (isinstance(s, int) and s == 0) or axes[j] is None:
                continue
            i = idx[axes[j]]
            terms.append(i if (isinstance(s, int) and s == 1) else f"{i} * {self.dim(s)}")
        return " + ".join(terms) or "0"

    def load(self, acc: Access, idx, axes) -> str:
        name = self.fresh("x")
        self.put(f"{name} = {self.buf(acc.buf)}[{self.address(acc, idx, axes)}]")
        return name

    def store(self, acc: Access, idx, axes, value):
        self.put(f"{self.buf(acc.buf)}[{self.address(acc, idx, axes)}] = {value}")

    def checked_index(self, value, n) -> str:
        """numpy's index rule: negative counts from the end; out of bounds sets the plan's flag (the executable
        raises IndexError) and reads element 0 instead, never outside the buffer."""
        w, flag = self.fresh("w"), self.buf(self.plan.flag)
        self.put(f"{w} = _cast_i64({value})", f"if {w} < 0:", f"    {w} = {w} + {n}",
                 f"if {w} < 0 or {w} >= {n}:", f"    {flag}[0] = 1", f"    {w} = _cast_i64(0)")
        return w

    # the kernel -------------------------------------------------------------------------------
    def finish(self) -> "Launchable":
        order = list(self.params)
        head = f"def {self.name}({', '.join(order)}):"
        src = "\n".join([head] + self.lines) + "\n"
        kern = generated_kernel(self.name, src, [self.params[n][1] for n in order])
        return Launchable(kern, [self.params[n][0] for n in order])


class Launchable:
    """A generated kernel with the parameters to bind at launch."""

    def __init__(self, kernel: GeneratedKernel, params: list):
        self.kernel, self.params = kernel, params

    def launch(self, arrays, env, threads: int, grid=None, block=None):
        if threads <= 0:
            return
        args = [p.value(arrays, env) for p in self.params]
        self.kernel[grid or blocks_for(threads), block or TPB](*args)
