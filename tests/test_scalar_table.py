"""The scalar table (tracejit/lower/scalar.py) against numpy on the CPU backend: every elementwise primitive of
PRIMS, every dtype it accepts, special values included (the CUDA half of this is in tests/test_cuda.py, which CI
runs under numba's simulator)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from scalar_cases import ELEMENTWISE, dtypes_of, mismatches
from tracejit.codegen.runtime import LLVMExecutable
from tracejit.ir.primitives import PRIMS
from tracejit.lower import scalar as S


def run_cpu(graph, cols):
    return LLVMExecutable(graph).run(cols)


@pytest.mark.parametrize("prim", ELEMENTWISE)
def test_every_elementwise_primitive_matches_numpy_on_cpu(prim):
    rng = np.random.default_rng(18)
    bad = [m for dt in dtypes_of(prim) for m in mismatches(prim, dt, run_cpu, rng)]
    assert not bad, bad


def test_every_elementwise_primitive_has_a_row():
    missing = [p for p in ELEMENTWISE if p not in S.RULES and p not in ("convert", "where")]
    assert not missing, f"elementwise primitives without a scalar-table row: {missing}"


def test_every_math_function_has_its_names():
    for row in S.MATH.values():
        assert row.libm or row.vec, row  # some CPU form exists
        assert row.nargs in (1, 2)
    assert S.VEC_FUNCTIONS <= set(S.MATH)


def _cpu_ops():
    import llvmlite.ir as ir
    from tracejit.codegen.cpu_scalar import F64, CpuScalarOps, _Math
    mod = ir.Module()
    fn = ir.Function(mod, ir.FunctionType(F64, [F64, F64]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    return CpuScalarOps(SimpleNamespace(b=b, math=_Math(mod))), fn.args


def _cuda_ops():
    from tracejit.codegen.cuda_scalar import CudaScalarOps
    return CudaScalarOps(), ("x0", "x1")


@pytest.mark.parametrize("backend", [_cpu_ops, _cuda_ops])
def test_every_row_lowers_and_a_missing_row_fails(backend):
    """Every row lowers on both backends' operations; a backend never invents a meaning for a primitive the table
    lacks: that is an error."""
    f64 = np.dtype(np.float64)
    for prim in S.RULES:
        ops, args = backend()
        S.lower(ops, prim, [f64, f64], f64, list(args)[:PRIMS[prim].nin])
    saved = S.RULES.pop("hypot")
    try:
        with pytest.raises(NotImplementedError, match="no row"):
            S.lower(backend()[0], "hypot", [f64, f64], f64, list(backend()[1]))
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
