"""Cases generated from PRIMS for every elementwise primitive: inputs of every dtype it accepts (zeros, -0.0,
negatives, inf, nan, integer extremes, random values), run on one backend, compared with numpy: bit for bit for
ints and bools, within the scalar table's ulp bound for floats (the sign of a zero is not compared: numpy's own
maximum(-0.0, 0.0) depends on whether its SIMD loop ran).

tests/test_scalar_table.py runs them on the CPU, tests/test_cuda.py on the CUDA backend (simulator in CI).
"""
from __future__ import annotations

import numpy as np

from tracejit.ir.graph import Graph, Value, toposort
from tracejit.ir.primitives import FLOAT_ONLY, NOT_FOR_FLOAT16, PRIMS, UFUNCS
from tracejit.ir.types import TensorType
from tracejit.ir import ops
from tracejit.lower import scalar as S

DTYPES = [np.dtype(d) for d in (np.bool_, np.int32, np.int64, np.float32, np.float64)]
# the narrow, unsigned and half dtypes: every primitive runs on them too (tests/test_scalar_table.py)
NEW_DTYPES = [np.dtype(d) for d in (np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64, np.float16)]
ELEMENTWISE = sorted(p for p, v in PRIMS.items() if v.kind == "elementwise")
_CHAR = {np.dtype(d).char: np.dtype(d) for d in DTYPES + NEW_DTYPES}
_ALL = DTYPES + NEW_DTYPES
# exponents numpy refuses (negative integer powers raise) or whose meaning is platform-defined are left out
_NONNEGATIVE_SECOND = {"power"}


def dtypes_of(prim, among=DTYPES) -> list:
    """The dtypes of ``among`` that ``prim`` computes in (all inputs of one dtype, as tracejit's elementwise
    primitives do)."""
    among = [d for d in among if d != np.float16 or prim not in NOT_FOR_FLOAT16]
    if prim in ("convert", "where", "stop_gradient"):
        return among
    if prim in FLOAT_ONLY or prim == "ldexp":  # ldexp: a float and an int64 exponent (ir/primitives.py)
        return [d for d in among if d.kind == "f"]
    out = []
    for sig in UFUNCS[prim].types:
        ins, _ = sig.split("->")
        if len(set(ins)) == 1 and ins[0] in _CHAR and _CHAR[ins[0]] in among and _CHAR[ins[0]] not in out:
            out.append(_CHAR[ins[0]])
    return out


def specials(dt) -> np.ndarray:
    dt = np.dtype(dt)
    if dt == np.bool_:
        return np.array([False, True])
    if dt.kind == "i":
        info = np.iinfo(dt)
        return np.array([0, 1, -1, 2, -2, 3, -7, 64, info.min, info.max, info.min + 1, info.max - 1], dt)
    if dt.kind == "u":
        top = int(np.iinfo(dt).max)
        return np.array([0, 1, 2, 3, 7, 64, 100, top, top - 1, top // 2, top // 2 + 1], dt)
    fi = np.finfo(dt)
    return np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 0.1, 3.0, -7.0, np.inf, -np.inf, np.nan, fi.tiny, fi.max,
                     -fi.max, 1e-30 if dt == np.float64 else 1e-20, 100.0, -100.0], dt)


def inputs(prim, dt, rng, nrandom=40):
    """Operand arrays (one per input): every pair of special values, then random ones."""
    dt = np.dtype(dt)
    nin = 3 if prim == "where" else (PRIMS[prim].nin if prim != "convert" else 1)
    sp = specials(dt)
    if dt == np.bool_:
        rand = rng.integers(0, 2, nrandom).astype(bool)
    elif dt.kind in "iu":
        rand = rng.integers(-1000, 1000, nrandom).astype(dt)  # wraps into the narrow and unsigned dtypes
    else:
        rand = (rng.standard_normal(nrandom) * 10.0 ** rng.integers(-3, 4, nrandom)).astype(dt)
    if nin == 1:
        cols = [np.concatenate([sp, rand])]
    else:
        a, b = np.meshgrid(sp, sp, indexing="ij")
        cols = [np.concatenate([a.ravel(), rand]), np.concatenate([b.ravel(), rand[::-1]])]
    if prim in _NONNEGATIVE_SECOND and dt.kind in "iu":
        cols[1] = np.abs(cols[1]) % 40
    if prim == "where":
        cols = [cols[0].astype(bool), cols[0], cols[1]]
    if prim == "ldexp":
        exps = np.array([0, 1, -1, 5, -5, 60, -60, 127, -149, 1023, -1074, -1080, 2000, -2000, 2 ** 40, -2 ** 40,
                         np.iinfo(np.int64).min, np.iinfo(np.int64).max], np.int64)
        cols[1] = np.resize(exps, len(cols[0]))
    return cols


def _graph(prim, dt, cols):
    """One-equation graphs for ``prim`` in ``dt`` (several: ``convert`` to each dtype), built with bind so no
    rewrite runs."""
    ins = [Value(TensorType(c.dtype, c.shape)) for c in cols]
    with ops.Builder():
        if prim == "convert":
            outs = [ops.bind("convert", ins[0], dtype=d) for d in _ALL if d != dt]
        else:
            outs = [ops.bind(prim, *ins)]
    return Graph(ins, outs, toposort(outs))


def _reference(prim, graph, cols):
    with np.errstate(all="ignore"):
        if prim == "convert":
            return [cols[0].astype(o.dtype) for o in graph.outputs]
        if cols[0].dtype == np.float16:  # numpy's float16 loops, not its scalar path
            return [np.asarray(PRIMS[prim].impl(*[c.reshape(-1) for c in cols])).astype(graph.outputs[0].dtype)]
        return [np.asarray(PRIMS[prim].impl(*cols)).astype(graph.outputs[0].dtype)]


def ulp_distance(a, b):
    """|a - b| in float steps (nan vs nan: 0; nan vs a number: inf; -0.0 vs 0.0: 0)."""
    it = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    mask = np.int64((1 << (8 * a.dtype.itemsize - 1)) - 1)
    ia, ib = (x.view(it).astype(np.int64) for x in (a, b))
    ia, ib = (np.where(i < 0, -(i & mask), i) for i in (ia, ib))
    d = np.abs(ia - ib).astype(np.float64)
    na, nb = np.isnan(a), np.isnan(b)
    return np.where(na & nb, 0.0, np.where(na ^ nb, np.inf, d))


def ulp_bound(prim) -> int:
    row = S.RULES.get(prim)
    return row.ulp if row is not None else 0


def _convertible(src, dst, x):
    """Where numpy's astype is defined (x86's answer for nan and out-of-range floats is not compared)."""
    if src.kind != "f" or dst.kind not in "iu" or (src in DTYPES and dst in DTYPES):
        return np.ones(x.shape, bool)
    info = np.iinfo(dst)
    with np.errstate(invalid="ignore", over="ignore"):
        return (x >= float(info.min)) & (x < float(info.max) + 1)


def mismatches(prim, dt, run, rng, nrandom=40) -> list:
    """Where backend ``run(graph, arrays) -> list of arrays`` differs from numpy: (input values, got, want)."""
    cols = inputs(prim, dt, rng, nrandom)
    graph = _graph(prim, dt, cols)
    got_all = run(graph, cols)
    bad = []
    for got, want in zip(got_all, _reference(prim, graph, cols)):
        got = np.asarray(got)
        assert got.dtype == want.dtype, (prim, dt, got.dtype, want.dtype)
        if want.dtype.kind == "f":
            # float16 results: float32 math rounded once more, so a float32 bound of a few ulps is 1 float16 ulp
            bound = min(ulp_bound(prim), 1) if want.dtype == np.float16 else ulp_bound(prim)
            wrong = ulp_distance(got, want) > bound
        else:
            wrong = got != want
        if prim == "convert":
            wrong &= _convertible(np.dtype(dt), want.dtype, cols[0])
        for i in np.flatnonzero(wrong)[:5]:
            bad.append((prim, str(dt), tuple(c[i] for c in cols), got[i], want[i]))
    return bad
