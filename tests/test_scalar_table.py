"""The scalar table (tracejit/lower/scalar.py) against numpy on the CPU backend: every elementwise primitive of
PRIMS, every dtype it accepts, special values included (the CUDA half of this is in tests/test_cuda.py, which CI
runs under numba's simulator)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from scalar_cases import ELEMENTWISE, NEW_DTYPES, dtypes_of, mismatches
from tracejit.backends.cpu.executable import LLVMExecutable
from tracejit.ir.primitives import PRIMS
from tracejit.lower import scalar as S


def run_cpu(graph, cols):
    return LLVMExecutable(graph).run(cols)


@pytest.mark.parametrize("prim", ELEMENTWISE)
def test_every_elementwise_primitive_matches_numpy_on_cpu(prim):
    rng = np.random.default_rng(18)
    bad = [m for dt in dtypes_of(prim) for m in mismatches(prim, dt, run_cpu, rng)]
    assert not bad, bad


@pytest.mark.parametrize("prim", ELEMENTWISE)
def test_every_elementwise_primitive_matches_numpy_on_narrow_unsigned_and_half_dtypes(prim):
    """int8/int16/uint8..uint64/float16: the special values of each and fewer random ones."""
    rng = np.random.default_rng(19)
    bad = [m for dt in dtypes_of(prim, NEW_DTYPES) for m in mismatches(prim, dt, run_cpu, rng, nrandom=16)]
    assert not bad, bad


def test_every_elementwise_primitive_has_a_row():
    missing = [p for p in ELEMENTWISE if p not in S.RULES and p not in ("convert", "where")]
    assert not missing, f"elementwise primitives without a scalar-table row: {missing}"


def test_every_math_function_has_its_names():
    for row in S.MATH.values():
        assert row.libm or row.vec, row  # some CPU form exists
        assert row.nargs in (1, 2)
    assert S.VEC_FUNCTIONS <= set(S.MATH)


def _cpu_ops(dts):
    import llvmlite.ir as ir
    from tracejit.backends.cpu.scalar import CpuScalarOps, MathFunctions, lltype
    mod = ir.Module()
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [lltype(d) for d in dts]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    return CpuScalarOps(SimpleNamespace(b=b, math=MathFunctions(mod))), list(fn.args)


def _cuda_ops(dts):
    from tracejit.backends.cuda.scalar import CudaScalarOps
    return CudaScalarOps(), [f"x{i}" for i in range(len(dts))]


def _operand_dtypes(prim):
    dt = dtypes_of(prim)[-1]
    return [dt, np.dtype(np.int64)] if prim == "ldexp" else [dt] * PRIMS[prim].nin


@pytest.mark.parametrize("backend", [_cpu_ops, _cuda_ops])
def test_every_row_lowers_and_a_missing_row_fails(backend):
    """Every row lowers on both backends' operations; a backend never invents a meaning for a primitive the table
    lacks: that is an error."""
    for prim in S.RULES:
        dts = _operand_dtypes(prim)
        ops, args = backend(dts)
        S.lower(ops, prim, dts, dts[0], args)
    saved = S.RULES.pop("hypot")
    try:
        with pytest.raises(NotImplementedError, match="no row"):
            S.lower(*backend([np.dtype(np.float64)] * 2)[:1], "hypot", [np.dtype(np.float64)] * 2,
                    np.dtype(np.float64), backend([np.dtype(np.float64)] * 2)[1])
    finally:
        S.RULES["hypot"] = saved


def test_cost_comes_from_the_table():
    assert S.is_expensive("exp") and S.is_expensive("sigmoid") and S.is_expensive("logaddexp")
    assert not S.is_expensive("add") and not S.is_expensive("sqrt") and not S.is_expensive("floor_divide")
    assert PRIMS["exp"].kind == "elementwise"


def test_the_two_old_divergences():
    """float floor_divide through fmod (1 // 0.1 == 9.0) and integer reciprocal(0) == INT_MIN, as numpy."""
    from tracejit.ir.graph import Graph, Value, toposort
    from tracejit.ir.types import TensorType
    from tracejit.ir import ops
    x, y = Value(TensorType(np.dtype(np.float64), (1,))), Value(TensorType(np.dtype(np.float64), (1,)))
    k = Value(TensorType(np.dtype(np.int32), (1,)))
    with ops.Builder():
        outs = [ops.bind("floor_divide", x, y), ops.bind("reciprocal", k)]
    got = run_cpu(Graph([x, y, k], outs, toposort(outs)), [np.array([1.0]), np.array([0.1]), np.array([0], np.int32)])
    assert got[0][0] == 9.0 and got[1][0] == np.iinfo(np.int32).min


# ------------------------------------------------------------------------------------------------ newer ufuncs
rng = np.random.default_rng(7)
X = np.concatenate([rng.uniform(-3, 3, 20), [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan]])
Y = np.concatenate([rng.uniform(-3, 3, 20), [-0.0, 0.5, np.nan, 3.0, 1.0, -np.inf, 2.0]])
K = np.resize(np.array([0, 1, -3, 7, 60, -1100, 2000], np.int64), X.shape)
A = np.array([0, 12, -18, 7, np.iinfo(np.int64).min, 2 ** 40, -5, 1], np.int64)
B = np.array([0, 8, 27, -7, 6, 2 ** 12, 65, 63], np.int64)


def _float_calls(x, y, k):
    return (np.heaviside(x, y), np.copysign(x, y), np.nextafter(x, y), np.ldexp(x, k), np.float_power(x, y),
            np.logaddexp2(x, y), np.sinc(x), np.deg2rad(x), np.radians(x), np.rad2deg(x), np.degrees(x),
            np.signbit(x), np.spacing(x))


def _int_calls(a, b):
    return (np.gcd(a, b), np.lcm(a, b), a << (b % 70), a >> (b % 70), np.left_shift(a, b), np.right_shift(a, b),
            np.left_shift(a.astype(np.int32), 3), np.gcd(a.astype(np.int32), 12))


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_newer_ufuncs_reach_tracers_and_match_numpy(dt):
    import tracejit as tj
    x, y = X.astype(dt), Y.astype(dt)
    with np.errstate(all="ignore"):
        want = _float_calls(x, y, K)
        got = tj.jit(_float_calls, strict_ieee=True)(x, y, K)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=4 * np.finfo(w.dtype).eps if w.dtype.kind == "f" else 0)
    for g, w in zip(tj.jit(_int_calls)(A, B), _int_calls(A, B)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


DIFFERENTIABLE = {
    "heaviside_h": (lambda x, y: np.heaviside(np.round(x), y), "y"),
    "copysign": (lambda x, y: np.copysign(x + 0.05, y), "xy"),  # away from the kink of |x| at 0
    "nextafter": (lambda x, y: np.nextafter(x, y), "xy"),
    "ldexp": (lambda x, y: np.ldexp(x, 3), "x"),
    "float_power": (lambda x, y: np.float_power(np.abs(x) + 0.5, y), "xy"),
    "logaddexp2": (lambda x, y: np.logaddexp2(x, y), "xy"),
    "sinc": (lambda x, y: np.sinc(x) * y, "xy"),
    "deg2rad": (lambda x, y: np.deg2rad(x) * np.rad2deg(y), "xy"),
}


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
def test_newer_ufunc_gradients_match_finite_differences(name):
    import tracejit as tj
    f, wrt = DIFFERENTIABLE[name]
    x = np.array([-2.3, -0.7, 0.4, 1.3, 2.9, 0.0])
    y = np.array([0.6, -1.2, 2.1, -0.4, 1.7, 1.1])
    loss = lambda x, y: np.sum(f(x, y))  # noqa: E731
    gx, gy = tj.grad(loss, argnums=(0, 1))(x, y)
    h = 1e-6
    for k, (arg, got) in enumerate(((x, gx), (y, gy))):
        if "xy"[k] not in wrt:
            continue
        fd = np.array([(loss(*[a + h * np.eye(len(a))[i] if j == k else a for j, a in enumerate((x, y))])
                        - loss(*[a - h * np.eye(len(a))[i] if j == k else a for j, a in enumerate((x, y))])) / (2 * h)
                       for i in range(len(arg))])
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6, err_msg=f"{name} d/d{'xy'[k]}")
