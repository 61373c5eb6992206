"""GPU backend: lowers an optimized Graph to CUDA kernels generated as Python source and compiled by numba.cuda.

Lowering rules (one function each below):
  elementwise  maximal chains of elementwise equations of one shape -> ONE grid-stride kernel (broadcast by strides)
  reduce       block-level tree reduction in shared memory; the elementwise expression feeding it is computed
               inside the reduction (so a row softmax needs no materialized ``exp(x - max)``); long reductions
               split over several blocks per output and finish with a second pass of the same kernel
  view         reshape/transpose/broadcast_to/slice change (offset, strides); a copy kernel only when needed
  matmul       cuBLAS through CuPy when it is installed (real GPU), else a tiled shared-memory kernel
  gather       bounds-checked kernel; a bad index raises IndexError after the launch
  scatter_add, concatenate, dimsize  small kernels / host scalars

Every kernel is plain Python source (``Executable.llvm_ir()`` shows it) compiled once per source text and device.
Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the same source runs with numpy-backed helpers.
"""
from __future__ import annotations

import math
import threading
import warnings

import numpy as np
from numba import cuda

from ..ir import types as T
from ..ir.interpret import check_constraints
from ..ir.primitives import PRIMS
from .cuda_check import device_index, simulator_enabled
from .cuda_scalar import _SUFFIX, _quiet, CudaScalarOps, cast_expr, literal as _literal, math_namespace

SIM = simulator_enabled()
TPB = 8 if SIM else 256  # threads per block (a power of two: the tree reductions halve it)
TILE = 4 if SIM else 16  # matmul tile edge
MAX_BLOCKS = 2 if SIM else 65535
_NUMBA = {T.BOOL: "boolean", T.INT32: "int32", T.INT64: "int64", T.FLOAT32: "float32", T.FLOAT64: "float64"}


# ================================================================================================ helpers

def _namespace() -> dict:
    """Globals of every generated kernel: casts, math and constants, bound per target."""
    import numba
    ns = {"cuda": cuda, "_INF": math.inf, "_NAN": math.nan}
    for dt, suf in _SUFFIX.items():
        ns["_T_" + suf] = getattr(numba, _NUMBA[dt])
        if dt == T.BOOL:
            continue
        if SIM:
            ns["_cast_" + suf] = _quiet(lambda x, dt=dt: np.asarray(x).astype(dt)[()])
        else:
            ns["_cast_" + suf] = getattr(numba, _NUMBA[dt])
    ns.update(math_namespace(SIM))
    return ns


_NS = None
_KERNELS: dict = {}
_KLOCK = threading.Lock()


class Kernel:
    """One generated kernel: source, numba signature, and the compiled dispatcher (compiled once per device)."""

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

    def __getitem__(self, config):
        if self._fn is None:
            self._fn = cuda.jit(self.pyfunc) if SIM else cuda.jit(self.sig)(self.pyfunc)
        return self._fn[config]

    def ptx(self, cc=None) -> str:
        """PTX for this kernel (no GPU needed, only NVVM: sm_90 unless a GPU says otherwise); '' under the simulator."""
        if SIM:
            return ""
        if cc is None:
            cc = cuda.get_current_device().compute_capability if cuda.is_available() else (9, 0)
        ptx, _ = cuda.compile_ptx(self.pyfunc, self.sig, cc=cc)
        return ptx


def get_kernel(name, source, argtypes, device="cuda") -> Kernel:
    key = (device, source, tuple(argtypes))
    k = _KERNELS.get(key)
    if k is None:
        with _KLOCK:
            k = _KERNELS.setdefault(key, Kernel(name, source, argtypes))
    return k


def _blocks(n):
    return max(1, min(MAX_BLOCKS if SIM else 32 * 132, -(-n // TPB)))


def _cstrides(shape):
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


def _offset(base, indices, strides) -> str:
    """Source of a strided element offset: base + i0 * s0 + i1 * s1 + ..."""
    return " + ".join([base] + [f"{i} * {s}" for i, s in zip(indices, strides)])


def _unravel(index, dims, prefix, indent):
    """Lines splitting flat ``index`` over ``dims`` (names) into ``prefix0..``, C order."""
    pad = " " * indent
    if not dims:
        return []
    if len(dims) == 1:
        return [f"{pad}{prefix}0 = {index}"]
    lines = [f"{pad}_r = {index}"]
    for k in range(len(dims) - 1, 0, -1):
        lines += [f"{pad}{prefix}{k} = _r % {dims[k]}", f"{pad}_r = _r // {dims[k]}"]
    lines.append(f"{pad}{prefix}0 = _r")
    return lines


# ================================================================================================ expressions
# the scalar operations live in cuda_scalar.py (the scalar table's rules, spelled as numba source)

def _body(eqns, leaves, outputs, leaf_names):
    """Statements computing ``outputs`` from ``leaves`` (leaf j is read into ``leaf_names[j]``)."""
    em = CudaScalarOps()
    names = {}
    for v, n in zip(leaves, leaf_names):
        names[v.id] = n
    for e in eqns:
        for v in e.inputs:
            if v.id not in names and v.is_const:  # only size-1 constants are not leaves
                names[v.id] = _literal(v.const.reshape(-1)[0], v.dtype)
        name = f"v{e.out.id}"
        em.emit(e, names, name)
        names[e.out.id] = name
    for v in outputs:
        if v.id not in names and v.is_const:
            names[v.id] = _literal(v.const.reshape(-1)[0], v.dtype)
    return em.lines, [names[v.id] for v in outputs]


def _is_literal(v):
    return v.is_const and v.const.size == 1


# ================================================================================================ run-time values

class Buf:
    """A strided view of a flat device array: element (i0, i1, ...) is data[off + sum(ik * strides[k])]."""

    __slots__ = ("data", "off", "shape", "strides", "dtype", "owned")

    def __init__(self, data, off, shape, strides, dtype, owned=False):
        self.data, self.off, self.shape, self.strides = data, off, tuple(shape), tuple(strides)
        self.dtype, self.owned = np.dtype(dtype), owned

    def view(self, off, shape, strides):
        return Buf(self.data, off, shape, strides, self.dtype, self.owned)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def is_c_contiguous(self):
        return all(st == cs for d, st, cs in zip(self.shape, self.strides, _cstrides(self.shape)) if d != 1)


class HostScalar:
    """A scalar known on the host (weak Python numbers, 0-d numpy inputs, dimsize): passed as a kernel argument."""

    __slots__ = ("value", "dtype")

    def __init__(self, value, dtype):
        self.dtype = np.dtype(dtype)
        self.value = np.asarray(value).astype(self.dtype)[()]


def _alloc(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    return Buf(cuda.device_array(max(n, 1), dtype=np.dtype(dtype)), 0, shape, _cstrides(shape), dtype, True)


def _bcast_strides(buf_shape, buf_strides, shape):
    """Strides of a buffer broadcast (numpy rules, right-aligned) to ``shape``; broadcast axes get stride 0."""
    nd, k = len(shape), len(buf_shape)
    out = [0] * nd
    for i in range(k):
        if buf_shape[i] != 1:
            out[nd - k + i] = buf_strides[i]
    return out


def _leaf_mode(x, shape):
    if isinstance(x, HostScalar):
        return "h"
    st = _bcast_strides(x.shape, x.strides, shape)
    if all(s == 0 for s in st):
        return "s"
    cs = _cstrides(shape)
    if all(s == c for s, c, d in zip(st, cs, shape) if d != 1) and all(s == 0 or d != 1 for s, d in zip(st, shape)):
        return "c"
    return "g"


# ================================================================================================ kernels

class ElementwiseStep:
    """One fused group of elementwise equations: a single grid-stride kernel writing every needed output."""

    kind = "elementwise"

    def __init__(self, eqns, leaves, outputs, shape):
        self.eqns, self.leaves, self.outputs, self.shape = eqns, leaves, outputs, shape
        self.lines, self.out_exprs = _body(eqns, leaves, outputs, [f"x{j}" for j in range(len(leaves))])
        self._variants: dict = {}
        self.name = f"fused_{'_'.join(e.prim for e in eqns[:4])}"[:60]

    def kernel(self, modes, rank):
        key = (modes, rank)
        k = self._variants.get(key)
        if k is None:
            k = self._variants[key] = _ew_kernel(self.name, self.lines, self.out_exprs,
                                                 [v.dtype for v in self.outputs],
                                                 [v.dtype for v in self.leaves], modes, rank)
        return k

    def default_kernel(self):
        return self.kernel(tuple(_static_mode(v, self.shape) for v in self.leaves), len(self.shape))

    def run(self, rt):
        shape = rt.shape_of(self.shape)
        xs = [rt.get(v) for v in self.leaves]
        outs = [_alloc(shape, v.dtype) for v in self.outputs]
        launch_elementwise(self.kernel, xs, [o.data for o in outs], shape)
        for v, o in zip(self.outputs, outs):
            rt.vals[v.id] = o


def _static_mode(v, shape):
    """The leaf mode a typical call will use (for llvm_ir/asm and compiling ahead of the first call)."""
    if v.ndim == 0:
        return "h" if (v.eqn is None and not v.is_const) or (v.eqn is not None and v.eqn.prim == "dimsize") else "s"
    return "c" if v.shape == shape else "g"


def launch_elementwise(get_kernel_for, xs, out_arrays, shape):
    rank = len(shape)
    modes = tuple(_leaf_mode(x, shape) for x in xs)
    kern = get_kernel_for(modes, rank)
    n = int(np.prod(shape, dtype=np.int64))
    if n == 0:
        return
    args = [n]
    if "g" in modes:
        args += list(shape)
    args += list(out_arrays)
    for x, md in zip(xs, modes):
        if md == "h":
            args.append(x.value)
        elif md == "g":
            args += [x.data, x.off] + _bcast_strides(x.shape, x.strides, shape)
        else:
            args += [x.data, x.off]
    kern[_blocks(n), TPB](*args)


def _ew_kernel(name, lines, out_exprs, out_dtypes, leaf_dtypes, modes, rank):
    general = "g" in modes
    params, types = ["n"], ["int64"]
    dims = [f"d{k}" for k in range(rank)] if general else []
    params += dims
    types += ["int64"] * len(dims)
    for k, dt in enumerate(out_dtypes):
        params.append(f"o{k}")
        types.append(f"{_NUMBA[dt]}[::1]")
    loads = []
    for j, (dt, md) in enumerate(zip(leaf_dtypes, modes)):
        if md == "h":
            params.append(f"a{j}")
            types.append(_NUMBA[dt])
            loads.append(f"x{j} = a{j}")
            continue
        params += [f"a{j}", f"a{j}o"]
        types += [f"{_NUMBA[dt]}[::1]", "int64"]
        if md == "g":
            st = [f"a{j}s{k}" for k in range(rank)]
            params += st
            types += ["int64"] * rank
            idx = _offset(f"a{j}o", [f"j{k}" for k in range(len(st))], st)
        else:
            idx = f"a{j}o + i" if md == "c" else f"a{j}o"
        loads.append(f"x{j} = a{j}[{idx}]")
    src = [f"def {name}({', '.join(params)}):", "    i = cuda.grid(1)", "    step = cuda.gridsize(1)",
           "    while i < n:"]
    if general:
        src += _unravel("i", dims, "j", 8)
    src += ["        " + ln for ln in loads]
    src += ["        " + ln for ln in lines]
    src += [f"        o{k}[i] = {ex}" for k, ex in enumerate(out_exprs)]
    src += ["        i += step"]
    return get_kernel(name, "\n".join(src) + "\n", types)


_REDUCE_IDENTITY = {"sum": 0, "prod": 1, "any": False, "all": True}


def _reduce_identity(prim, dt):
    if prim in _REDUCE_IDENTITY:
        return _literal(_REDUCE_IDENTITY[prim], dt)
    lo = prim in ("max", "argmax")
    if dt.kind == "f":
        return "(-_INF)" if lo else "_INF"
    if dt == T.BOOL:
        return "False" if lo else "True"
    info = np.iinfo(dt)
    return _literal(info.min if lo else info.max, dt)


def _combine(prim, acc, x, dt):
    """Statements folding value ``x`` into ``acc`` (both of the accumulator dtype)."""
    fl = dt.kind == "f"
    if prim == "sum":
        return [f"{acc} = {cast_expr(f'{acc} + {x}', dt)}"]
    if prim == "prod":
        return [f"{acc} = {cast_expr(f'{acc} * {x}', dt)}"]
    if prim == "any":
        return [f"{acc} = {acc} or {x}"]
    if prim == "all":
        return [f"{acc} = {acc} and {x}"]
    cmp = ">" if prim == "max" else "<"
    keep_nan = f" and {acc} == {acc}" if fl else ""
    return [f"if {x} {cmp} {acc} or ({x} != {x}{keep_nan}):", f"    {acc} = {x}"]


def _arg_combine(prim, acc, ai, x, xi):
    """argmax/argmin: keep the first nan, else the best value, ties to the smallest index."""
    cmp = ">" if prim == "argmax" else "<"
    return [f"if {acc} != {acc}:", f"    _take = ({x} != {x}) and {xi} < {ai}",
            f"elif {x} != {x}:", "    _take = True",
            "else:", f"    _take = {x} {cmp} {acc} or ({x} == {acc} and {xi} < {ai})",
            "if _take:", f"    {acc} = {x}", f"    {ai} = {xi}"]


class ReduceStep:
    """A reduction with its elementwise producer inlined: one block per output, tree in shared memory."""

    kind = "reduce"

    def __init__(self, eqn, prologue, leaves):
        self.eqn, self.prologue, self.leaves = eqn, prologue, leaves
        self.prim = eqn.prim
        self.axes = eqn.p["axes"]
        src = eqn.inputs[0]
        self.in_shape = src.shape
        self.keep = [a for a in range(src.ndim) if a not in self.axes]
        self.acc_dtype = T.BOOL if self.prim in ("any", "all") else (
            src.dtype if self.prim in ("argmax", "argmin") else eqn.out.dtype)
        lines, (val,) = _body(prologue, leaves, [src], [f"x{j}" for j in range(len(leaves))])
        em = CudaScalarOps()
        if self.prim in ("any", "all"):
            val = f"({val} != 0)"
        elif self.prim not in ("argmax", "argmin"):
            val = em.convert(val, src.dtype, self.acc_dtype)
        self.lines, self.value = lines + em.lines, val
        self._variants: dict = {}

    def kernel(self, modes, nkeep, nred, first=True):
        key = (modes, nkeep, nred, first)
        k = self._variants.get(key)
        if k is None:
            if first:
                lines, val, dts = self.lines, self.value, [v.dtype for v in self.leaves]
            else:  # second pass over the partial results: the leaf is already in the accumulator dtype
                lines, val, dts = [], "x0", [self.acc_dtype]
            k = self._variants[key] = _reduce_kernel(f"reduce_{self.prim}", self.prim, lines, val, dts, modes,
                                                     nkeep, nred, self.acc_dtype, self.eqn.out.dtype)
        return k

    def default_kernel(self):
        return self.kernel(tuple("h" if v.ndim == 0 else "g" for v in self.leaves), len(self.keep), len(self.axes))

    def run(self, rt):
        shape = rt.shape_of(self.in_shape)
        kshape = tuple(shape[a] for a in self.keep)
        rshape = tuple(shape[a] for a in self.axes)
        nk, nr = int(np.prod(kshape, dtype=np.int64)), int(np.prod(rshape, dtype=np.int64))
        out = _alloc(kshape, self.eqn.out.dtype)
        rt.vals[self.eqn.out.id] = out
        if nk == 0:
            return
        xs = [rt.get(v) for v in self.leaves]
        modes = tuple("h" if isinstance(x, HostScalar) else "g" for x in xs)
        parts = 1
        if self.prim not in ("argmax", "argmin") and nr > 4 * TPB:
            target = 4 if SIM else 4 * 132
            parts = max(1, min(-(-nr // (4 * TPB)), -(-target // nk), 1024))
        args = []
        for x, md in zip(xs, modes):
            if md == "h":
                args.append(x.value)
            else:
                st = _bcast_strides(x.shape, x.strides, shape)
                args += [x.data, x.off] + [st[a] for a in self.keep] + [st[a] for a in self.axes]
        grid_x = max(1, min(nk, MAX_BLOCKS if SIM else 65535))
        if parts == 1:
            kern = self.kernel(modes, len(kshape), len(rshape))
            kern[(grid_x, 1), TPB](nk, nr, 1, *kshape, *rshape, out.data, *args)
            return
        partial = _alloc((nk, parts), self.acc_dtype)
        kern = self.kernel(modes, len(kshape), len(rshape))
        kern[(grid_x, parts), TPB](nk, nr, parts, *kshape, *rshape, partial.data, *args)
        fin = self.kernel(("g",), 1, 1, first=False)
        fin[(grid_x, 1), TPB](nk, parts, 1, nk, parts, out.data, partial.data, 0, parts, 1)


def _reduce_kernel(name, prim, lines, val, leaf_dtypes, modes, nkeep, nred, acc_dt, out_dt):
    arg = prim in ("argmax", "argmin")
    kd = [f"kd{k}" for k in range(nkeep)]
    rd = [f"rd{k}" for k in range(nred)]
    params = ["nk", "nr", "parts"] + kd + rd + ["out"]
    types = ["int64"] * (3 + nkeep + nred) + [f"{_NUMBA[out_dt]}[::1]"]
    bases, loads = [], []
    for j, (dt, md) in enumerate(zip(leaf_dtypes, modes)):
        if md == "h":
            params.append(f"a{j}")
            types.append(_NUMBA[dt])
            loads.append(f"x{j} = a{j}")
            continue
        ks = [f"a{j}k{k}" for k in range(nkeep)]
        rs = [f"a{j}r{k}" for k in range(nred)]
        params += [f"a{j}", f"a{j}o"] + ks + rs
        types += [f"{_NUMBA[dt]}[::1]", "int64"] + ["int64"] * (nkeep + nred)
        bases.append(f"b{j} = " + _offset(f"a{j}o", [f"q{k}" for k in range(len(ks))], ks))
        loads.append(f"x{j} = a{j}[" + _offset(f"b{j}", [f"j{k}" for k in range(len(rs))], rs) + "]")
    ident = _reduce_identity(prim, acc_dt)
    acc_t = f"_T_{_SUFFIX[acc_dt]}"
    src = [f"def {name}({', '.join(params)}):",
           f"    sv = cuda.shared.array({TPB}, {acc_t})"]
    if arg:
        src.append(f"    si = cuda.shared.array({TPB}, _T_i64)")
    src += ["    t = cuda.threadIdx.x", "    p = cuda.blockIdx.y", "    k = cuda.blockIdx.x", "    while k < nk:"]
    src += _unravel("k", kd, "q", 8)
    src += ["        " + b for b in bases]
    src += [f"        acc = {ident}"]
    if arg:
        src.append("        ai = _cast_i64(9223372036854775807)")
    src += [f"        r = p * {TPB} + t", "        while r < nr:"]
    src += _unravel("r", rd, "j", 12)
    src += ["            " + ln for ln in loads + lines]
    src += [f"            xv = {val}"]
    comb = _arg_combine(prim, "acc", "ai", "xv", "r") if arg else _combine(prim, "acc", "xv", acc_dt)
    src += ["            " + ln for ln in comb]
    src += [f"            r += parts * {TPB}", "        sv[t] = acc"]
    if arg:
        src.append("        si[t] = ai")
    src += ["        cuda.syncthreads()", f"        s = {TPB // 2}", "        while s > 0:", "            if t < s:",
            "                acc = sv[t]", "                xv = sv[t + s]"]
    if arg:
        src += ["                ai = si[t]", "                xi = si[t + s]"]
        comb2 = _arg_combine(prim, "acc", "ai", "xv", "xi")
    else:
        comb2 = _combine(prim, "acc", "xv", acc_dt)
    src += ["                " + ln for ln in comb2]
    src += ["                sv[t] = acc"]
    if arg:
        src += ["                si[t] = ai"]
    src += ["            cuda.syncthreads()", "            s = s // 2", "        if t == 0:"]
    if arg:
        src.append("            out[k] = si[0] if si[0] != 9223372036854775807 else 0")
    else:
        src.append("            out[k * parts + p] = sv[0]")
    src += ["        cuda.syncthreads()", "        k += cuda.gridDim.x"]
    return get_kernel(name, "\n".join(src) + "\n", types)


class MatmulStep:
    kind = "matmul"

    def __init__(self, eqn):
        self.eqn = eqn
        a, b = eqn.inputs
        self.dtype = eqn.out.dtype
        self.nbatch = a.ndim - 2

    def default_kernel(self):
        return _matmul_kernel(self.nbatch, self.dtype)

    def run(self, rt):
        a_v, b_v = self.eqn.inputs
        a, b = rt.as_buf(a_v), rt.as_buf(b_v)
        n, k = a.shape[-2:]
        m = b.shape[-1]
        batch = a.shape[:-2]
        out = _alloc(batch + (n, m), self.dtype)
        rt.vals[self.eqn.out.id] = out
        if out.size == 0:
            return
        if k == 0:
            _fill(out, 0)
            return
        if _cublas_matmul(a, b, out):
            return
        nb = int(np.prod(batch, dtype=np.int64))
        kern = _matmul_kernel(len(batch), self.dtype)
        grid = (max(1, min(-(-m // TILE), MAX_BLOCKS)), max(1, min(-(-n // TILE), MAX_BLOCKS)),
                max(1, min(nb, MAX_BLOCKS)))
        kern[grid, (TILE, TILE)](nb, n, m, k, *batch, a.data, a.off, *a.strides, b.data, b.off, *b.strides,
                                 out.data)


def _matmul_kernel(nbatch, dt):
    bd = [f"bd{i}" for i in range(nbatch)]
    acs = [f"as{i}" for i in range(nbatch)]
    bcs = [f"bs{i}" for i in range(nbatch)]
    params = ["nb", "n", "m", "kk"] + bd + ["A", "ao"] + acs + ["asr", "asc", "B", "bo"] + bcs + ["bsr", "bsc", "C"]
    arr = f"{_NUMBA[dt]}[::1]"
    types = ["int64"] * (4 + nbatch) + [arr] + ["int64"] * (nbatch + 3) + [arr] + ["int64"] * (nbatch + 3) + [arr]
    zero = _literal(0, dt)
    acc_t = f"_T_{_SUFFIX[dt]}"
    src = ["def matmul_tiled(" + ", ".join(params) + "):",
           f"    sa = cuda.shared.array(({TILE}, {TILE}), {acc_t})",
           f"    sb = cuda.shared.array(({TILE}, {TILE}), {acc_t})",
           "    tx = cuda.threadIdx.x", "    ty = cuda.threadIdx.y", "    z = cuda.blockIdx.z", "    while z < nb:"]
    src += _unravel("z", bd, "q", 8)
    src += ["        abase = " + _offset("ao", [f"q{i}" for i in range(len(acs))], acs),
            "        bbase = " + _offset("bo", [f"q{i}" for i in range(len(bcs))], bcs),
            "        bi = cuda.blockIdx.y", f"        while bi * {TILE} < n:", "            bj = cuda.blockIdx.x",
            f"            while bj * {TILE} < m:", f"                row = bi * {TILE} + ty",
            f"                col = bj * {TILE} + tx", f"                acc = {zero}", "                t0 = 0",
            "                while t0 < kk:",
            "                    ka = t0 + tx", "                    kb = t0 + ty",
            "                    if row < n and ka < kk:",
            "                        sa[ty, tx] = A[abase + row * asr + ka * asc]",
            "                    else:", f"                        sa[ty, tx] = {zero}",
            "                    if kb < kk and col < m:",
            "                        sb[ty, tx] = B[bbase + kb * bsr + col * bsc]",
            "                    else:", f"                        sb[ty, tx] = {zero}",
            "                    cuda.syncthreads()",
            f"                    for u in range({TILE}):",
            f"                        acc = {cast_expr('acc + sa[ty, u] * sb[u, tx]', dt)}",
            "                    cuda.syncthreads()", f"                    t0 += {TILE}",
            "                if row < n and col < m:", "                    C[(z * n + row) * m + col] = acc",
            "                bj += cuda.gridDim.x", "            bi += cuda.gridDim.y", "        z += cuda.gridDim.z"]
    return get_kernel("matmul_tiled", "\n".join(src) + "\n", types)


_CUPY_STATE = {"mod": None, "warned": False}


def _cupy():
    if SIM:
        return None
    if _CUPY_STATE["mod"] is None:
        try:
            import cupy
            _CUPY_STATE["mod"] = cupy
        except Exception:
            _CUPY_STATE["mod"] = False
    return _CUPY_STATE["mod"] or None


def _as_cupy(cp, buf):
    item = buf.dtype.itemsize
    ptr = buf.data.__cuda_array_interface__["data"][0] + buf.off * item
    extent = 1 + sum((d - 1) * s for d, s in zip(buf.shape, buf.strides))
    mem = cp.cuda.UnownedMemory(ptr, extent * item, buf.data)
    return cp.ndarray(buf.shape, buf.dtype, cp.cuda.MemoryPointer(mem, 0), tuple(s * item for s in buf.strides))


def _cublas_matmul(a, b, out) -> bool:
    """cuBLAS through CuPy (float32/float64, real GPU); False to fall back to the tiled kernel."""
    cp = _cupy()
    if cp is None or out.dtype.kind != "f" or any(s < 0 for s in a.strides + b.strides):
        return False
    try:
        cp.matmul(_as_cupy(cp, a), _as_cupy(cp, b), out=_as_cupy(cp, out))
        return True
    except Exception as e:  # keep working (slower) and say so once
        if not _CUPY_STATE["warned"]:
            _CUPY_STATE["warned"] = True
            warnings.warn(f"tracejit: cuBLAS matmul through CuPy failed ({e}); using the tiled CUDA kernel")
        return False


def _copy_kernel(rank, dt):
    dims = [f"d{k}" for k in range(rank)]
    os_ = [f"os{k}" for k in range(rank)]
    as_ = [f"as{k}" for k in range(rank)]
    arr = f"{_NUMBA[dt]}[::1]"
    params = ["n"] + dims + ["O", "oo"] + os_ + ["A", "ao"] + as_
    types = ["int64"] * (1 + rank) + [arr] + ["int64"] * (rank + 1) + [arr] + ["int64"] * (rank + 1)
    src = [f"def copy_strided({', '.join(params)}):", "    i = cuda.grid(1)", "    step = cuda.gridsize(1)",
           "    while i < n:"]
    src += _unravel("i", dims, "j", 8)
    src += ["        O[" + _offset("oo", [f"j{k}" for k in range(len(os_))], os_) + "] = A["
            + _offset("ao", [f"j{k}" for k in range(len(as_))], as_) + "]", "        i += step"]
    return get_kernel("copy_strided", "\n".join(src) + "\n", types)


def _copy_into(dst: Buf, src: Buf):
    n = dst.size
    if n == 0:
        return
    st = _bcast_strides(src.shape, src.strides, dst.shape)
    _copy_kernel(len(dst.shape), dst.dtype)[_blocks(n), TPB](n, *dst.shape, dst.data, dst.off, *dst.strides,
                                                            src.data, src.off, *st)


def _fill_kernel(dt):
    src = ["def fill(n, O, v):", "    i = cuda.grid(1)", "    while i < n:", "        O[i] = v",
           "        i += cuda.gridsize(1)"]
    return get_kernel("fill", "\n".join(src) + "\n", ["int64", f"{_NUMBA[dt]}[::1]", _NUMBA[dt]])


def _fill(buf: Buf, value):
    n = buf.data.size
    _fill_kernel(buf.dtype)[_blocks(n), TPB](n, buf.data, np.asarray(value).astype(buf.dtype)[()])


class GatherStep:
    """``np.take(x, idx, axis)`` with numpy's bounds check: a bad index sets a flag read after the launch."""

    kind = "gather"

    def __init__(self, eqn):
        self.eqn = eqn
        self.axis = eqn.p["axis"]

    def default_kernel(self):
        x, idx = self.eqn.inputs
        return _gather_kernel(x.ndim, idx.ndim, self.axis, x.dtype, idx.dtype)

    def run(self, rt):
        x_v, i_v = self.eqn.inputs
        x, idx = rt.as_buf(x_v), rt.as_buf(i_v)
        ax = self.axis
        shape = x.shape[:ax] + idx.shape + x.shape[ax + 1:]
        out = _alloc(shape, x.dtype)
        rt.vals[self.eqn.out.id] = out
        n = out.size
        if n == 0:
            return
        err = rt.error_flag()
        kern = _gather_kernel(len(x.shape), len(idx.shape), ax, x.dtype, idx.dtype)
        kern[_blocks(n), TPB](n, *shape, out.data, x.data, x.off, *x.strides, x.shape[ax], idx.data, idx.off,
                              *idx.strides, err)
        rt.check_error(err, f"for axis {ax} with size {x.shape[ax]}")


def _gather_kernel(rx, ri, ax, dt, idt):
    ro = rx - 1 + ri
    od = [f"d{k}" for k in range(ro)]
    xs = [f"xs{k}" for k in range(rx)]
    is_ = [f"is{k}" for k in range(ri)]
    params = ["n"] + od + ["O", "X", "xo"] + xs + ["xn", "I", "io"] + is_ + ["err"]
    types = (["int64"] * (1 + ro) + [f"{_NUMBA[dt]}[::1]", f"{_NUMBA[dt]}[::1]"] + ["int64"] * (rx + 2)
             + [f"{_NUMBA[idt]}[::1]"] + ["int64"] * (ri + 1) + ["int64[::1]"])
    pre = [f"j{k}" for k in range(ax)]
    mid = [f"j{k}" for k in range(ax, ax + ri)]
    post = [f"j{k}" for k in range(ax + ri, ro)]
    iidx = _offset("io", mid, is_)
    xidx = _offset("xo", pre + ["w"] + post, xs)
    src = [f"def gather({', '.join(params)}):", "    i = cuda.grid(1)", "    while i < n:"]
    src += _unravel("i", od, "j", 8)
    src += [f"        w = _cast_i64(I[{iidx}])", "        w0 = w", "        if w < 0:", "            w += xn",
            "        if w < 0 or w >= xn:", "            err[0] = 1", "            err[1] = w0",
            f"            O[i] = {_literal(0, dt)}", "        else:", f"            O[i] = X[{xidx}]",
            "        i += cuda.gridsize(1)"]
    return get_kernel("gather", "\n".join(src) + "\n", types)


class ScatterAddStep:
    """The VJP of gather: zero the output, then atomically add each element (atomics spread over many addresses)."""

    kind = "scatter_add"

    def __init__(self, eqn):
        self.eqn = eqn
        self.axis = eqn.p["axis"]
        if eqn.out.dtype == T.BOOL:
            raise NotImplementedError("scatter_add of bool arrays is not supported by the CUDA backend")

    def default_kernel(self):
        g, idx = self.eqn.inputs
        return _scatter_kernel(g.ndim, idx.ndim, self.axis, g.dtype, idx.dtype)

    def run(self, rt):
        g_v, i_v = self.eqn.inputs
        g, idx = rt.as_buf(g_v), rt.as_buf(i_v)
        shape = rt.shape_of(self.eqn.out.shape)
        out = _alloc(shape, self.eqn.out.dtype)
        rt.vals[self.eqn.out.id] = out
        _fill(out, 0)
        n = g.size
        if n == 0:
            return
        ax = self.axis
        kern = _scatter_kernel(len(g.shape), len(idx.shape), ax, g.dtype, idx.dtype)
        err = rt.error_flag()
        kern[_blocks(n), TPB](n, *g.shape, g.data, g.off, *g.strides, idx.data, idx.off, *idx.strides,
                              shape[ax], out.data, *out.strides, err)
        rt.check_error(err, f"for axis {ax} with size {shape[ax]}")  # as the CPU backend: never dropped silently


def _scatter_kernel(rg, ri, ax, dt, idt):
    gd = [f"d{k}" for k in range(rg)]
    gs = [f"gs{k}" for k in range(rg)]
    is_ = [f"is{k}" for k in range(ri)]
    ro = rg - ri + 1
    os_ = [f"os{k}" for k in range(ro)]
    params = ["n"] + gd + ["G", "go"] + gs + ["I", "io"] + is_ + ["size", "O"] + os_ + ["err"]
    types = (["int64"] * (1 + rg) + [f"{_NUMBA[dt]}[::1]"] + ["int64"] * (rg + 1) + [f"{_NUMBA[idt]}[::1]"]
             + ["int64"] * (ri + 2) + [f"{_NUMBA[dt]}[::1]"] + ["int64"] * ro + ["int64[::1]"])
    j = [f"j{k}" for k in range(rg)]
    pre, mid, post = j[:ax], j[ax:ax + ri], j[ax + ri:]
    gidx = _offset("go", j, gs)
    iidx = _offset("io", mid, is_)
    oidx = _offset("0", pre + ["w"] + post, os_)
    src = [f"def scatter_add({', '.join(params)}):", "    i = cuda.grid(1)", "    while i < n:"]
    src += _unravel("i", gd, "j", 8)
    src += [f"        w = _cast_i64(I[{iidx}])", "        w0 = w", "        if w < 0:", "            w += size",
            "        if w >= 0 and w < size:", f"            cuda.atomic.add(O, {oidx}, G[{gidx}])",
            "        else:", "            err[0] = 1", "            err[1] = w0",
            "        i += cuda.gridsize(1)"]
    return get_kernel("scatter_add", "\n".join(src) + "\n", types)


class ConcatenateStep:
    kind = "concatenate"

    def __init__(self, eqn):
        self.eqn = eqn
        self.axis = eqn.p["axis"]

    def default_kernel(self):
        return _copy_kernel(self.eqn.out.ndim, self.eqn.out.dtype)

    def run(self, rt):
        parts = [rt.as_buf(v) for v in self.eqn.inputs]
        ax = self.axis
        shape = list(parts[0].shape)
        shape[ax] = sum(p.shape[ax] for p in parts)
        out = _alloc(tuple(shape), self.eqn.out.dtype)
        pos = 0
        for p in parts:
            _copy_into(out.view(pos * out.strides[ax], p.shape, out.strides), p)
            pos += p.shape[ax]
        rt.vals[self.eqn.out.id] = out


# ================================================================================================ lowering

def _prologue(v):
    """The elementwise equations computing ``v`` that have v's shape (inlined into a reduction), and its leaves."""
    eqns, leaves, seen = [], [], set()

    def visit(x):
        if x.id in seen:
            return
        seen.add(x.id)
        e = x.eqn
        if e is not None and PRIMS[e.prim].kind == "elementwise" and (x.shape == v.shape or x.ndim == 0):
            for y in e.inputs:
                visit(y)
            eqns.append(e)
        elif not _is_literal(x):
            leaves.append(x)
    visit(v)
    return eqns, leaves


def lower(graph):
    """Graph -> ordered steps. Views and dimsize are resolved lazily at run time (no kernel)."""
    topo = graph.eqns
    pos = {id(e): i for i, e in enumerate(topo)}
    steps_at: dict = {}
    needed_by_steps: set = set()  # value ids read by non-elementwise steps or returned
    reduces = {}
    for e in topo:
        kind = PRIMS[e.prim].kind
        if kind == "reduce":
            pro, leaves = _prologue(e.inputs[0])
            reduces[id(e)] = (pro, leaves)
            needed_by_steps |= {v.id for v in leaves}
        elif kind != "elementwise":
            needed_by_steps |= {v.id for v in e.inputs}
    needed_by_steps |= {v.id for v in graph.outputs}
    # elementwise equations that must run: those whose values reach a step, an output, or another live one
    # (0-d elementwise values read only by larger elementwise equations are recomputed inside their kernels)
    def inlined(v, by):
        return (v.eqn is not None and PRIMS[v.eqn.prim].kind == "elementwise" and v.ndim == 0 < by.out.ndim
                and v.id not in needed_by_steps)

    live, work, seen = set(), [v for v in _values_by_id(graph).values() if v.id in needed_by_steps], set()
    while work:
        v = work.pop()
        e = v.eqn
        if e is None or PRIMS[e.prim].kind != "elementwise" or id(e) in seen:
            continue
        seen.add(id(e))
        live.add(id(e))
        stack = list(e.inputs)
        while stack:
            x = stack.pop()
            if inlined(x, e):
                stack += list(x.eqn.inputs)
            else:
                work.append(x)
    # Group live elementwise equations. A group is launched at its LAST member, so it stays open (can grow)
    # until something outside it reads one of its values; reading through a view counts as a read of the base.
    groups: list = []
    member_of: dict = {}

    def base(v):
        while v.eqn is not None and PRIMS[v.eqn.prim].kind == "view":
            v = v.eqn.inputs[0]
        return v

    def read(v, by=None):
        g = member_of.get(base(v).id)
        if g is not None and g is not by:
            g["open"] = False

    def can_join(g, e):
        return g["open"] and g["shape"] == e.out.shape and all(
            v.id in g["ids"] or base(v).id not in g["ids"] for v in e.inputs)

    for e in topo:
        kind = PRIMS[e.prim].kind
        if kind == "elementwise":
            if id(e) not in live:
                continue
            cands = [member_of[v.id] for v in e.inputs if v.id in member_of]
            bases = {base(v).id for v in e.inputs}
            cands += [g for g in reversed(groups[-8:]) if bases & g["leaves"]]
            chosen = next((g for g in cands if can_join(g, e)), None)
            if chosen is None:
                chosen = {"shape": e.out.shape, "eqns": [], "ids": set(), "leaves": set(), "open": True}
                groups.append(chosen)
            added = _inline_scalars(e, inlined, chosen["ids"])
            for x in added:
                chosen["eqns"].append(x)
                chosen["ids"].add(x.out.id)
            for x in added + [e]:
                for v in x.inputs:
                    if v.id not in chosen["ids"]:
                        read(v, chosen)
                        chosen["leaves"].add(base(v).id)
            chosen["eqns"].append(e)
            chosen["ids"].add(e.out.id)
            chosen["launch"] = pos[id(e)]
            member_of[e.out.id] = chosen
        elif kind == "view" or e.prim == "dimsize":
            continue
        elif kind == "reduce":
            for v in reduces[id(e)][1]:
                read(v)
            steps_at[pos[id(e)]] = ReduceStep(e, *reduces[id(e)])
        else:
            for v in e.inputs:
                read(v)
            if e.prim not in _OTHER_STEPS:
                raise NotImplementedError(f"the CUDA backend has no lowering for the primitive {e.prim!r}")
            steps_at[pos[id(e)]] = _OTHER_STEPS[e.prim](e)
    for g in groups:
        steps_at[g["launch"]] = g
    # a group writes the members read outside it
    outside: set = set(needed_by_steps)
    for g in groups:
        for e in g["eqns"]:
            for v in e.inputs:
                if v.id not in g["ids"]:
                    outside.add(v.id)
    steps = []
    for p in sorted(steps_at):
        s = steps_at[p]
        if isinstance(s, dict):
            outs = [e.out for e in s["eqns"] if e.out.id in outside]
            if not outs:
                continue
            leaves, seen = [], set()
            for e in s["eqns"]:
                for v in e.inputs:
                    if v.id not in s["ids"] and v.id not in seen and not _is_literal(v):
                        seen.add(v.id)
                        leaves.append(v)
            s = ElementwiseStep(s["eqns"], leaves, outs, s["shape"])
        steps.append(s)
    return steps


def _inline_scalars(e, inlined, have):
    """The 0-d elementwise equations to recompute inside e's kernel, in topological order."""
    out, seen = [], set(have)

    def visit(v):
        if v.id in seen or not inlined(v, e):
            return
        seen.add(v.id)
        for x in v.eqn.inputs:
            visit(x)
        out.append(v.eqn)
    for v in e.inputs:
        visit(v)
    return out


_OTHER_STEPS = {"matmul": MatmulStep, "gather": GatherStep, "scatter_add": ScatterAddStep,
                "concatenate": ConcatenateStep}


def _values_by_id(graph):
    out = {v.id: v for v in graph.inputs}
    for e in graph.eqns:
        out[e.out.id] = e.out
        for v in e.inputs:
            out[v.id] = v
    for v in graph.outputs:
        out[v.id] = v
    return out


# ================================================================================================ the executable

def is_device_array(x) -> bool:
    if SIM:
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        return isinstance(x, FakeCUDAArray)
    return not isinstance(x, np.ndarray) and hasattr(x, "__cuda_array_interface__")


def _device_input(x, dtype) -> Buf:
    """A device array as a flat Buf (zero-copy when C-contiguous; else one strided copy kernel)."""
    arr = x if SIM or isinstance(x, cuda.devicearray.DeviceNDArray) else cuda.as_cuda_array(x)
    shape = tuple(arr.shape)
    n = int(np.prod(shape, dtype=np.int64))
    if arr.is_c_contiguous():
        flat = arr.reshape(max(n, 1)) if n else cuda.device_array(1, dtype)
        return Buf(flat, 0, shape, _cstrides(shape), dtype)
    out = _alloc(shape, dtype)
    rank = len(shape)
    dims = [f"d{k}" for k in range(rank)]
    src = [f"def copy_nd(n, {', '.join(dims)}, O, A):", "    i = cuda.grid(1)", "    while i < n:"]
    src += _unravel("i", dims, "j", 8)
    src += [f"        O[i] = A[{', '.join(f'j{k}' for k in range(rank))}]", "        i += cuda.gridsize(1)"]
    kern = get_kernel("copy_nd", "\n".join(src) + "\n",
                      ["int64"] * (rank + 1) + [f"{_NUMBA[np.dtype(dtype)]}[::1]", f"{_NUMBA[np.dtype(dtype)]}[{', '.join([':'] * rank)}]"])
    kern[_blocks(n), TPB](n, *shape, out.data, arr)
    return out


class Runtime:
    """Per-call state: the symbol values and the Buf / HostScalar of every value computed so far."""

    def __init__(self, exe, env):
        self.exe, self.env, self.vals = exe, env, {}

    def shape_of(self, shape):
        return tuple(T.eval_dim(d, self.env) for d in shape)

    def get(self, v):
        x = self.vals.get(v.id)
        if x is not None:
            return x
        if v.is_const:
            x = self.exe.const(v)
        else:
            e = v.eqn
            if e.prim == "dimsize":
                x = HostScalar(T.eval_dim(e.p["dim"], self.env), np.int64)
            elif PRIMS[e.prim].kind == "view":
                x = self._view(e, self.get(e.inputs[0]))
            else:
                raise RuntimeError(f"tracejit CUDA backend: value {v} was not computed before use")
        self.vals[v.id] = x
        return x

    def as_buf(self, v) -> Buf:
        x = self.get(v)
        if isinstance(x, Buf):
            return x
        shape = self.shape_of(v.shape)
        data = cuda.to_device(np.asarray([x.value], dtype=x.dtype))
        return Buf(data, 0, shape, (0,) * len(shape), x.dtype)

    def _view(self, e, x):
        if isinstance(x, HostScalar):
            return x
        p = e.p
        if e.prim == "transpose":
            perm = p["perm"]
            return x.view(x.off, [x.shape[a] for a in perm], [x.strides[a] for a in perm])
        if e.prim == "broadcast_to":
            shape = self.shape_of(p["shape"])
            return x.view(x.off, shape, _bcast_strides(x.shape, x.strides, shape))
        if e.prim == "slice":
            starts = self.shape_of(p["starts"])
            off = x.off + sum(s * st for s, st in zip(starts, x.strides))
            return x.view(off, self.shape_of(p["shape"]), [st * k for st, k in zip(x.strides, p["steps"])])
        if e.prim == "reshape":
            shape = self.shape_of(p["shape"])
            if not x.is_c_contiguous():
                x = self.contiguous(x)
            return x.view(x.off, shape, _cstrides(shape))
        raise NotImplementedError(e.prim)

    def contiguous(self, x: Buf) -> Buf:
        out = _alloc(x.shape, x.dtype)
        _copy_into(out, x)
        return out

    def error_flag(self):
        return self.exe.error_flag()

    def check_error(self, err, where):
        host = err.copy_to_host()
        if host[0]:
            self.exe.reset_error_flag()
            raise IndexError(f"index {int(host[1])} is out of bounds {where}")


class CudaExecutable:
    """The compiled program for one graph and device: ``run`` takes numpy or device arrays."""

    def __init__(self, graph, device="cuda"):
        self.graph = graph
        self.device = device
        self.device_index = device_index(device)
        self.steps = lower(graph)
        self.num_kernels = len(self.steps)
        self._consts: dict = {}
        self._err = None
        for s in self.steps:  # compile now: kernels compile once per executable (and source), not per call
            if not SIM:
                s.default_kernel()

    # -- resources kept across calls
    def const(self, v):
        x = self._consts.get(v.id)
        if x is None:
            arr = np.ascontiguousarray(v.const)
            if arr.size == 1:
                x = HostScalar(arr.reshape(-1)[0], arr.dtype)
            else:
                x = Buf(cuda.to_device(arr.reshape(-1)), 0, arr.shape, _cstrides(arr.shape), arr.dtype)
            self._consts[v.id] = x
        return x

    def error_flag(self):
        if self._err is None:
            self._err = cuda.to_device(np.zeros(2, np.int64))
        return self._err

    def reset_error_flag(self):
        self._err = None

    # -- calls
    def run(self, arrays):
        if self.device_index:
            with cuda.gpus[self.device_index]:
                return self._run(arrays)
        return self._run(arrays)

    def _run(self, arrays):
        on_device = any(is_device_array(a) for a in arrays)
        env = {s: tuple(arrays[i].shape)[ax] for s, (i, ax) in self.graph.symbols.items()}
        check_constraints(self.graph, env)
        rt = Runtime(self, env)
        for v, a in zip(self.graph.inputs, arrays):
            rt.vals[v.id] = self._input(v, a)
        for s in self.steps:
            s.run(rt)
        outs, used = [], set()
        for v in self.graph.outputs:
            x = rt.get(v)
            shape = rt.shape_of(v.shape)
            if isinstance(x, HostScalar) or not (x.owned and x.off == 0 and x.is_c_contiguous()
                                                 and x.size == x.data.size and id(x.data) not in used
                                                 and tuple(x.shape) == shape):
                src = rt.as_buf(v) if isinstance(x, HostScalar) else x
                if isinstance(x, HostScalar):
                    src = src.view(0, shape, (0,) * len(shape))
                x = _alloc(shape, v.dtype)
                _copy_into(x, src)
            used.add(id(x.data))
            outs.append(_device_output(x, shape) if on_device else _host_output(x, shape))
        return outs

    def _input(self, v, a):
        if is_device_array(a):
            return _device_input(a, v.dtype)
        a = np.asarray(a)
        if a.ndim == 0:
            return HostScalar(a[()], v.dtype)
        a = np.ascontiguousarray(a, dtype=v.dtype)
        return Buf(cuda.to_device(a.reshape(-1)), 0, a.shape, _cstrides(a.shape), a.dtype)

    # -- inspection
    def kernels(self):
        return [s.default_kernel() for s in self.steps]

    def llvm_ir(self):
        """The generated kernel source (Python compiled by numba.cuda), one block per step."""
        parts = []
        for s, k in zip(self.steps, self.kernels()):
            parts.append(f"# {s.kind} step -> kernel {k.name}{k.sig[4:]}\n{k.source}")
        return "\n".join(parts)

    def asm(self):
        """PTX of every kernel (needs NVVM, not a GPU); under the simulator a note saying there is none."""
        if SIM:
            return "# PTX is not generated under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)\n"
        return "\n".join(f"// kernel {k.name}\n{k.ptx()}" for k in self.kernels())

    def memory_plan(self, args):
        return [f"{s.kind}: {getattr(s, 'name', s.kind)}" for s in self.steps]


def _host_output(x: Buf, shape):
    host = x.data.copy_to_host()
    n = int(np.prod(shape, dtype=np.int64))
    return host[:n].reshape(shape)


def _device_output(x: Buf, shape):
    n = int(np.prod(shape, dtype=np.int64))
    data = x.data if x.data.size == n else x.data[:n]
    try:
        return data.reshape(shape)
    except Exception:
        return cuda.devicearray.DeviceNDArray(shape, (), x.dtype, gpu_data=data.gpu_data)


def compile_graph_cuda(graph, device="cuda"):
    from ..passes.pipeline import strip_identity_marks
    return CudaExecutable(strip_identity_marks(graph), device)
