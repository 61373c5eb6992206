"""The plan's other steps as CUDA kernels: CopyStep, ScatterAddStep (atomics) and MatmulStep (cuBLAS through
CuPy on a GPU where CuPy is installed, else a tiled shared-memory kernel). Each mirrors the CPU backend's lowering
of the same step (``lower_copy``, ``lower_scatter_add``, ``lower_matmul``): same accesses, same meaning."""
from __future__ import annotations

import warnings

import numpy as np

from ...ir import types as T
from ...lower.plan import Access, CopyStep, MatmulStep, ScatterAddStep
from .scalar import _SUFFIX, cast_expr, literal
from .source import MAX_BLOCKS, SIM, KernelSource

TILE = 4 if SIM else 16  # matmul tile edge


def _own_axes(shape):
    """Dim j indexed by loop index j (size-1 dims by none)."""
    return tuple(None if d == 1 else j for j, d in enumerate(shape))


class StepLaunch:
    """Kernels of one non-kernel step, launched in order with the number of threads each needs."""

    def __init__(self, parts):
        self.parts = parts  # (Launchable, threads: int or Dim)

    @property
    def kernels(self):
        return [lk.kernel for lk, _ in self.parts]

    def run(self, arrays, env):
        for lk, threads in self.parts:
            lk.launch(arrays, env, int(T.eval_dim(threads, env)))


def _elementwise_loop(src: KernelSource, shape):
    dims = [src.dim(d) for d in shape]
    names = [f"j{j}" for j in range(len(shape))]
    src.grid_loop(" * ".join(dims) or "1", dims, names)
    return {j: nm for j, nm in enumerate(names)}


def copy_launch(plan, step: CopyStep) -> StepLaunch:
    src = KernelSource(plan, "copy_strided")
    idx = _elementwise_loop(src, step.src.shape)
    v = src.load(step.src, idx, _own_axes(step.src.shape))
    src.store(step.dst, idx, _own_axes(step.dst.shape), v)
    src.end_loop()
    return StepLaunch([(src.finish(), T.prod(step.src.shape))])


def _zero_fill(plan, out: Access):
    src = KernelSource(plan, "zero_fill")
    idx = _elementwise_loop(src, out.shape)
    src.store(out, idx, _own_axes(out.shape), literal(0, plan.buffers[out.buf].dtype))
    src.end_loop()
    return src.finish(), T.prod(out.shape)


def scatter_add_launch(plan, step: ScatterAddStep) -> StepLaunch:
    """out = zeros, then out[idx along axis] += g with atomic adds (repeated indices add up); a bad index sets
    the flag and adds nothing."""
    out, g, ax = step.out, step.g, step.axis
    dt = plan.buffers[out.buf].dtype
    if dt == T.BOOL:
        raise NotImplementedError("scatter_add of bool arrays is not supported by the CUDA backend")
    src = KernelSource(plan, "scatter_add")
    idx = _elementwise_loop(src, g.shape)
    iv = src.load(step.idx, idx, tuple(None if d == 1 else ax + j for j, d in enumerate(step.idx.shape)))
    n = src.dim(out.shape[ax])
    w = src.fresh("w")
    src.put(f"{w} = _cast_i64({iv})", f"if {w} < 0:", f"    {w} = {w} + {n}",
            f"if {w} < 0 or {w} >= {n}:", f"    {src.buf(plan.flag)}[0] = 1", "else:")
    src.depth += 1
    idx_nd = len(step.idx.shape)
    oaxes = []
    for j, d in enumerate(out.shape):
        oaxes.append(None if d == 1 else ("s" if j == ax else (j if j < ax else j - 1 + idx_nd)))
    gv = src.load(g, idx, _own_axes(g.shape))
    src.put(f"cuda.atomic.add({src.buf(out.buf)}, {src.address(out, {**idx, 's': w}, tuple(oaxes))}, {gv})")
    src.depth -= 1
    src.end_loop()
    return StepLaunch([_zero_fill(plan, out), (src.finish(), T.prod(g.shape))])


# ------------------------------------------------------------------------------------------------ matmul
def _tiled_matmul_source(plan, step: MatmulStep) -> KernelSource:
    """C[b] = alpha * A[b] @ B[b] + beta * C[b]: each block computes TILE x TILE outputs, staging tiles of A and
    B in shared memory; blocks stride over row tiles, column tiles and the batch."""
    A, B, C = step.a, step.b, step.out
    dt = np.dtype(step.dtype)
    src = KernelSource(plan, "matmul_tiled")
    nb = len(C.shape) - 2
    bdims = [src.dim(d) for d in C.shape[:nb]]
    n, m, kk = src.dim(C.shape[-2]), src.dim(C.shape[-1]), src.dim(A.shape[-1])
    ba, bb, bc = (src.address(Access(x.buf, x.shape[:nb], x.strides[:nb], x.offset),
                              {j: f"q{j}" for j in range(nb)}, _own_axes(x.shape[:nb])) for x in (A, B, C))

    def at(x, r, c):  # the offset of element (r, c) of x's matrix from its batch base
        sr, sc = x.strides[-2:]
        rt = "" if x.shape[-2] == 1 or sr == 0 else f" + {r} * {src.dim(sr)}"
        ct = "" if x.shape[-1] == 1 or sc == 0 else f" + {c} * {src.dim(sc)}"
        return f"{rt}{ct}"
    zero, acc_t = literal(0, dt), f"_T_{_SUFFIX[dt]}"
    Ab, Bb, Cb = src.buf(A.buf), src.buf(B.buf), src.buf(C.buf)
    src.put(f"sa = cuda.shared.array(({TILE}, {TILE}), {acc_t})", f"sb = cuda.shared.array(({TILE}, {TILE}), {acc_t})",
            "tx = cuda.threadIdx.x", "ty = cuda.threadIdx.y", "z = cuda.blockIdx.z",
            f"while z < {' * '.join(bdims) or '1'}:")
    src.depth += 1
    if nb:
        src.put("_r = z")
        for j in range(nb - 1, 0, -1):
            src.put(f"q{j} = _r % {bdims[j]}", f"_r = _r // {bdims[j]}")
        src.put("q0 = _r")
    src.put(f"abase = {ba}", f"bbase = {bb}", f"cbase = {bc}", "bi = cuda.blockIdx.y", f"while bi * {TILE} < {n}:")
    body = [
        "bj = cuda.blockIdx.x", f"while bj * {TILE} < {m}:",
        f"    row = bi * {TILE} + ty", f"    col = bj * {TILE} + tx", f"    acc = {zero}", "    t0 = 0",
        f"    while t0 < {kk}:", "        ka = t0 + tx", "        kb = t0 + ty",
        f"        if row < {n} and ka < {kk}:", f"            sa[ty, tx] = {Ab}[abase{at(A, 'row', 'ka')}]",
        "        else:", f"            sa[ty, tx] = {zero}",
        f"        if kb < {kk} and col < {m}:", f"            sb[ty, tx] = {Bb}[bbase{at(B, 'kb', 'col')}]",
        "        else:", f"            sb[ty, tx] = {zero}",
        "        cuda.syncthreads()", f"        for u in range({TILE}):",
        f"            acc = {cast_expr('acc + sa[ty, u] * sb[u, tx]', dt)}",
        "        cuda.syncthreads()", f"        t0 += {TILE}",
        f"    if row < {n} and col < {m}:"]
    res = "acc" if step.alpha == 1.0 else f"acc * {literal(step.alpha, dt)}"
    if step.beta:
        res = f"{res} + {Cb}[cbase{at(C, 'row', 'col')}]" + ("" if step.beta == 1.0 else f" * {literal(step.beta, dt)}")
    body += [f"        {Cb}[cbase{at(C, 'row', 'col')}] = {cast_expr(res, dt)}",
             "    bj += cuda.gridDim.x"]
    src.depth += 1
    src.put(*body, "bi += cuda.gridDim.y")
    src.depth -= 1
    src.put("z += cuda.gridDim.z")
    return src


class MatmulLaunch:
    """cuBLAS through CuPy where it works (a real GPU, float dtypes), else the tiled kernel."""

    def __init__(self, plan, step: MatmulStep):
        self.plan, self.step = plan, step
        self.tiled = _tiled_matmul_source(plan, step).finish()

    @property
    def kernels(self):
        return [self.tiled.kernel]

    def run(self, arrays, env):
        C = self.step.out
        shape = [int(T.eval_dim(d, env)) for d in C.shape]
        if int(np.prod(shape)) == 0:
            return
        if _cublas_matmul(self.plan, self.step, arrays, env):
            return
        nb = int(np.prod(shape[:-2], dtype=np.int64))
        grid = (max(1, min(-(-shape[-1] // TILE), MAX_BLOCKS)), max(1, min(-(-shape[-2] // TILE), MAX_BLOCKS)),
                max(1, min(nb, MAX_BLOCKS)))
        self.tiled.launch(arrays, env, 1, grid=grid, block=(TILE, TILE))


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


def _as_cupy(cp, flat, acc: Access, dtype, env):
    """A CuPy view of ``acc`` over the flat device array of its buffer (no copy)."""
    item = np.dtype(dtype).itemsize
    shape = [int(T.eval_dim(d, env)) for d in acc.shape]
    strides = [int(T.eval_dim(s, env)) for s in acc.strides]
    off = int(T.eval_dim(acc.offset, env))
    ptr = flat.__cuda_array_interface__["data"][0] + off * item
    extent = 1 + sum((d - 1) * abs(s) for d, s in zip(shape, strides))
    mem = cp.cuda.UnownedMemory(ptr, extent * item, flat)
    return cp.ndarray(shape, dtype, cp.cuda.MemoryPointer(mem, 0), tuple(s * item for s in strides))


def _cublas_matmul(plan, step: MatmulStep, arrays, env) -> bool:
    """out = alpha * a @ b + beta * out through CuPy (float dtypes, real GPU); False to use the tiled kernel."""
    cp = _cupy()
    dt = np.dtype(step.dtype)
    if cp is None or dt.kind != "f":
        return False
    try:
        a, b, out = (_as_cupy(cp, arrays[x.buf], x, dt, env) for x in (step.a, step.b, step.out))
        if any(s < 0 for s in a.strides + b.strides):
            return False
        if step.beta == 0.0 and step.alpha == 1.0:
            cp.matmul(a, b, out=out)
        else:
            prod = cp.matmul(a, b)
            out[...] = (prod * step.alpha + out * step.beta) if step.beta else prod * step.alpha
        return True
    except Exception as e:  # keep working (slower) and say so once
        if not _CUPY_STATE["warned"]:
            _CUPY_STATE["warned"] = True
            warnings.warn(f"tracejit: cuBLAS matmul through CuPy failed ({e}); using the tiled CUDA kernel")
        return False


def step_launch(plan, step):
    if isinstance(step, CopyStep):
        return copy_launch(plan, step)
    if isinstance(step, ScatterAddStep):
        return scatter_add_launch(plan, step)
    if isinstance(step, MatmulStep):
        return MatmulLaunch(plan, step)
    raise NotImplementedError(f"the CUDA backend has no lowering for plan step {type(step).__name__}")
