"""ir/types.py: symbolic dims, broadcasting, numpy 2 promotion; and jitted result dtypes equal to numpy's."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tracejit as tj
from tracejit.ir import types as T
from tracejit.ir.types import Dim, TensorType
from conftest import assert_same

DTYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]
n, m = Dim.symbol("n"), Dim.symbol("m")


# ------------------------------------------------------------------------------------------------ Dim
def test_dim_arithmetic_is_structural():
    assert n + 0 == n
    assert (n + 1) - 1 == n
    assert n * 1 == n
    assert n - n == 0 and isinstance(n - n, int)
    assert (n * m) == (m * n)
    assert hash(n * m) == hash(m * n)
    assert n + m != n
    assert (n - 1) == (n + (-1))
    assert 2 * n == n + n


def test_dim_floordiv_simplifies_when_exact():
    assert (n * m) // m == n
    assert (4 * n) // 2 == 2 * n
    assert 12 // 4 == T.dim_floordiv(12, 4)
    d = T.dim_floordiv(n, 5)
    assert isinstance(d, Dim) and T.eval_dim(d, {"n": 17}) == 3


@given(st.integers(0, 50), st.integers(0, 50))
def test_eval_dim(a, b):
    env = {"n": a, "m": b}
    assert T.eval_dim(n * m + 3 * n - m + 2, env) == a * b + 3 * a - b + 2
    assert T.eval_dim(T.dim_max(n - 3, 0), env) == max(a - 3, 0)
    assert T.eval_dim(T.dim_min(n, m), env) == min(a, b)
    assert T.eval_dim(T.prod([n, 2, m]), env) == 2 * a * b


def test_symbolic_dim_refuses_python_int_use():
    with pytest.raises(tj.ConcretizationError, match="symbolic length"):
        int(n)
    with pytest.raises(tj.ConcretizationError):
        range(n)
    with pytest.raises(tj.ConcretizationError):
        bool(n > 2)


def test_shape_str():
    assert T.shape_str((3,)) == "(3,)"
    assert T.shape_str((n, 1)) == "(n, 1)"
    assert T.shape_str(()) == "()"


# ------------------------------------------------------------------------------------------------ broadcasting
def test_broadcast_static():
    assert T.broadcast_shapes((3, 1), (1, 4)) == (3, 4)
    assert T.broadcast_shapes((), (2, 3)) == (2, 3)
    with pytest.raises(ValueError, match=r"\(3,\) \(4,\)"):
        T.broadcast_shapes((3,), (4,))


def test_broadcast_symbolic_records_constraint():
    cs = []
    assert T.broadcast_shapes((n, 1), (1, m), constraints=cs) == (n, m)
    assert cs == []
    out = T.broadcast_shapes((n,), (m,), constraints=cs)
    assert len(out) == 1 and len(cs) == 1
    assert cs[0][0] == "eq"
    with pytest.raises(ValueError, match="broadcast"):
        T.broadcast_shapes((n,), (m,))  # no constraint list: cannot defer the check


def test_broadcast_equal_symbols_need_no_check():
    cs = []
    assert T.broadcast_shapes((n, m), (m,), constraints=cs) == (n, m)
    assert cs == []


# ------------------------------------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dt", DTYPES)
def test_check_dtype_accepts_supported(dt):
    assert T.check_dtype(dt) == np.dtype(dt)


@pytest.mark.parametrize("dt", [np.complex128, np.longdouble, object, "U3", "S2", "datetime64[s]"])
def test_check_dtype_rejects_others(dt):
    with pytest.raises(TypeError, match="the thing"):
        T.check_dtype(dt, "the thing")


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, repeat=2)))
def test_result_dtype_strong(a, b):
    got, weak = T.result_dtype(TensorType(np.dtype(a), ()), TensorType(np.dtype(b), ()))
    assert got == np.result_type(a, b) and not weak


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_result_dtype_weak_matches_numpy2(a, scalar):
    kind = {bool: np.bool_, int: np.int64, float: np.float64}[type(scalar)]
    got, weak = T.result_dtype(TensorType(np.dtype(a), (n,)), TensorType(np.dtype(kind), (), weak=True))
    assert got == np.result_type(np.ones(2, a), scalar)  # numpy 2: Python scalars are weak here too


# ------------------------------------------------------------------------------------------------ jitted dtypes
BINOPS = {"add": lambda x, y: x + y, "multiply": lambda x, y: x * y, "divide": lambda x, y: x / y,
          "maximum": np.maximum, "less": np.less, "power": np.power, "arctan2": np.arctan2,
          "floor_divide": lambda x, y: x // y}


def _operand(dt):
    return (np.array([1, 2, 3]) % 2 == 1) if dt is np.bool_ else np.array([1, 2, 3]).astype(dt)


def _split_cases(cases, args):
    """numpy's results for the cases it computes in a supported dtype; for the others, check that tracejit
    raises TypeError at trace time (cheap: nothing is compiled)."""
    good, expected = {}, {}
    for name, f in cases.items():
        with np.errstate(all="ignore"):
            try:
                e = np.asarray(f(*args))
            except TypeError:
                with pytest.raises(TypeError):
                    tj.jit(f)(*args)
                continue
        if e.dtype not in T.SUPPORTED_DTYPES:  # int8 (bool ** bool), float16 (sqrt of bool) are supported
            with pytest.raises(TypeError, match=str(e.dtype)):
                tj.jit(f)(*args)
            continue
        good[name], expected[name] = f, e
    return good, expected


def _check_batch(good, expected, args):
    """All supported cases in one jitted function: one compile per test."""
    with np.errstate(all="ignore"):
        got = tj.jit(lambda *xs: {k: f(*xs) for k, f in good.items()})(*args)
    for k, e in expected.items():
        assert_same(got[k], e, err_msg=k)


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, repeat=2)))
def test_jitted_binary_result_dtype_matches_numpy(a, b):
    args = (_operand(a), _operand(b))
    _check_batch(*_split_cases(BINOPS, args), args)


@pytest.mark.parametrize("a", DTYPES)
@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_jitted_weak_scalar_result_dtype_matches_numpy(a, scalar):
    """A Python scalar passed as an argument (traced, weak) or closed over (a weak constant), on either side."""
    cases = {}
    for op, f in BINOPS.items():
        cases[f"{op}(x, s)"] = lambda x, s, f=f: f(x, s)
        cases[f"{op}(s, x)"] = lambda x, s, f=f: f(s, x)
        cases[f"{op}(x, {scalar!r})"] = lambda x, s, f=f: f(x, scalar)
    args = (_operand(a), scalar)
    _check_batch(*_split_cases(cases, args), args)


@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_scalar_only_computation_is_numpys(scalar):
    """Python scalars alone compute as numpy's 0-d arrays of their default dtype (True * True is a bool)."""
    f = tj.jit(lambda s, t: s * t + s)
    s = np.asarray(scalar)
    assert_same(f(scalar, scalar), np.asarray(s * s + s))
