"""numpy 2 at the edges (issue 17): each numbered case gives numpy's result or numpy's exception type, never a
silently different value; then the rest of the class, found by differential tests against numpy itself
(promotion with Python and numpy scalars, reductions over empty and length-1 axes, every keyword tracejit
accepts)."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, note, settings, strategies as st
from numpy.exceptions import AxisError

import tracejit as tj
from numpy_more_cases import MORE_KEYWORD_CASES, MORE_REFUSED
from tracejit.errors import ConcretizationError, UnsupportedError
from tracejit.ir import types as T
from tracejit.ir.primitives import BINARY_UFUNCS, UNARY_UFUNCS
from tracejit.trace.numpy_api import IMPLS

from conftest import assert_same

SUPPORTED = [np.dtype(d) for d in (np.bool_, np.int32, np.int64, np.float32, np.float64)]


def numpy_or_error(f, *args, **kwargs):
    """(result, None) or (None, exception) of numpy, warnings (divide by zero, empty mean) silenced."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(f(*args, **kwargs)), None
        except Exception as e:  # numpy's exception is the expected outcome
            return None, e


def kind(e: BaseException) -> type:
    """The public exception class a caller would catch (UFuncTypeError is a TypeError, AxisError first)."""
    for t in (AxisError, OverflowError, ZeroDivisionError, IndexError, ValueError, TypeError):
        if isinstance(e, t):
            return t
    return type(e)


def same_outcome(actual_fn, expected, error, err_msg=""):
    """tracejit's call gives numpy's value (dtype, shape, values) or raises numpy's kind of exception."""
    if error is not None:
        with pytest.raises(kind(error)):
            actual_fn()
        return
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        actual = actual_fn()
    assert_same(np.asarray(actual), expected, err_msg=err_msg)


# ------------------------------------------------------------------------------------------------ 1. int power
def test_negative_int_exponent_array_raises():
    f = tj.jit(np.power)
    with pytest.raises(ValueError, match="negative integer powers"):
        f(np.array([[2, 3]]), np.array([[-1, -2]]))
    assert_same(f(np.array([[2, 3]]), np.array([[1, 2]])), np.array([[2, 9]]))  # the same compiled signature


def test_negative_int_exponent_constant_raises_at_trace_time():
    with pytest.raises(ValueError, match="negative integer powers"):
        tj.make_ir(lambda x: x ** -1)(np.array([2, 3]))
    with pytest.raises(ValueError, match="negative integer powers"):
        tj.jit(lambda x: np.power(x, np.array([1, -1])))(np.array([2, 3], np.int32))


def test_negative_int_exponent_python_int_argument_raises():
    f = tj.jit(lambda x, k: x ** k)
    assert_same(f(np.array([2, 3], np.int32), 3), np.array([8, 27], np.int32))
    with pytest.raises(ValueError, match="negative integer powers"):
        f(np.array([2, 3], np.int32), -2)


def test_negative_int_exponent_only_where_used():
    """numpy checks the exponents its loop uses: an empty result raises nothing."""
    f = tj.jit(np.power)
    assert_same(f(np.zeros(0, np.int64), np.array([-1])), np.zeros(0, np.int64))
    assert_same(f(np.array([2.0]), np.array([-1])), np.array([0.5]))  # a float base is fine


def test_failed_power_call_leaves_held_outputs_alone():
    f = tj.jit(np.power)
    base = np.arange(1, 100_001, dtype=np.int64) % 5
    good = f(base, np.full(base.shape, 2))
    kept = good.copy()
    bad = np.full(base.shape, 2)
    bad[-1] = -1
    with pytest.raises(ValueError):
        f(base, bad)
    np.testing.assert_array_equal(good, kept)


# ------------------------------------------------------------------------------------------------ 2. Python ints
def test_python_int_constant_out_of_range_raises():
    x = np.ones(3, np.int32)
    with pytest.raises(OverflowError, match="2147483648 out of bounds for int32"):
        tj.jit(lambda x: x + 2**31 - 1)(x)  # (x + 2**31) - 1, as numpy evaluates it
    assert_same(tj.jit(lambda x: x + (2**31 - 1))(x), x + (2**31 - 1))  # fits: int32 wrap-around, as numpy
    with pytest.raises(OverflowError):
        tj.jit(lambda x: np.maximum(x, 2**40))(x)


def test_python_int_argument_out_of_range_raises_at_call_time():
    f = tj.jit(lambda x, k: x + k)
    x = np.ones(3, np.int32)
    assert_same(f(x, 5), x + 5)
    with pytest.raises(OverflowError, match="int32"):
        f(x, 2**40)
    with pytest.raises(OverflowError):
        f(x, -2**31 - 1)
    assert_same(f(x, -2**31), x + -2**31)


def test_python_int_out_of_range_where_numpy_accepts_it():
    """Comparisons are exact, clip bounds clip, a float operand takes any int, as in numpy 2."""
    x = np.array([-3, 0, 7], np.int32)
    for f in (lambda x: x == 2**40, lambda x: x < 2**40, lambda x: 2**40 <= x, lambda x: x > -2**40,
              lambda x: x != -2**63, lambda x: np.clip(x, 0, 2**40), lambda x: x / 2**40):
        assert_same(tj.jit(f)(x), f(x))
    g = tj.jit(lambda x, k: (x < k, x == k))
    for k in (2**40, -2**40, 7):
        for a, e in zip(g(x, k), (x < k, x == k)):
            assert_same(a, e)
    y = np.ones(3)
    assert_same(tj.jit(lambda y: y + 2**64)(y), y + 2**64)
    assert_same(tj.jit(lambda y: y.astype(np.float32) * 2**200)(y), y.astype(np.float32) * 2**200)


# ------------------------------------------------------------------------------------------------ 3. numpy scalars
def test_numpy_scalars_are_strong():
    x = np.ones(3, np.float32)
    eps = np.float64(1e-10)
    assert_same(tj.jit(lambda x: x + eps)(x), x + eps)  # closed over
    assert_same(tj.jit(lambda x, e: x + e)(x, eps), x + eps)  # an argument
    assert_same(tj.jit(lambda x: x * 1e-10)(x), x * 1e-10)  # a Python float stays weak
    i = np.ones(3, np.int32)
    assert_same(tj.jit(lambda i: i + np.int64(2))(i), i + np.int64(2))


# ------------------------------------------------------------------------------------------------ 4. dtype=
def test_sum_dtype_is_honoured():
    x = np.full(3, 2**30, np.int32)
    assert_same(tj.jit(lambda x: x.sum(dtype=np.int32))(x), x.sum(dtype=np.int32))  # wraps around in int32
    assert_same(tj.jit(lambda x: np.prod(x, dtype=np.float32))(x), np.prod(x, dtype=np.float32))
    assert_same(tj.jit(lambda x: np.add(x, x, dtype=np.int64))(x), np.add(x, x, dtype=np.int64))


def test_keywords_numpy_rejects_are_rejected():
    x = np.ones(3)
    with pytest.raises(TypeError):
        tj.jit(lambda x: np.add(x, x, dtype=np.int64))(x)  # float64 -> int64 is not same_kind
    with pytest.raises(TypeError):
        tj.jit(lambda x: x.max(dtype=np.float32))(x)  # np.max has no dtype=
    with pytest.raises(UnsupportedError):
        tj.jit(lambda x: np.sum(x, where=x > 0))(x)


# ------------------------------------------------------------------------------------------------ 5. no identity
@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin", "amax", "amin"])
def test_reductions_without_identity_raise_on_empty(name):
    f = tj.jit(lambda x: getattr(np, name)(x))
    g = tj.jit(lambda x: getattr(np, name)(x, axis=1))
    with pytest.raises(ValueError):
        f(np.empty(0))
    with pytest.raises(ValueError):
        g(np.empty((3, 0)))
    assert_same(g(np.empty((0, 3))), getattr(np, name)(np.empty((0, 3)), axis=1))  # nothing reduced empty
    assert_same(f(np.arange(3.0)), getattr(np, name)(np.arange(3.0)))  # same signature, non-empty


def test_initial_makes_empty_max_valid():
    f = tj.jit(lambda x: np.max(x, initial=5.0))
    assert_same(f(np.empty(0)), np.max(np.empty(0), initial=5.0))
    assert_same(f(np.arange(9.0)), np.max(np.arange(9.0), initial=5.0))


# ------------------------------------------------------------------------------------------------ 6. reshape(-1)
def test_reshape_minus_one_ambiguous_for_size_zero():
    with pytest.raises(ValueError, match="ambiguous"):
        tj.jit(lambda x: x.reshape(0, -1))(np.empty((0, 3)))
    f = tj.jit(lambda x: x.reshape(x.shape[0], -1))
    with pytest.raises(ValueError, match="ambiguous"):
        f(np.empty((0, 3)))
    assert_same(f(np.ones((2, 3, 4))), np.ones((2, 12)))
    assert_same(tj.jit(lambda x: x.reshape(3, -1))(np.empty((3, 0))), np.empty((3, 0)))


# ------------------------------------------------------------------------------------------------ 7. 0-d axis
@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "any", "all", "argmax", "argmin"])
@pytest.mark.parametrize("axis", [0, -1, 1, (0,)])
def test_zero_d_reductions_take_axis_zero(name, axis):
    x = np.array(3.0)
    expected, error = numpy_or_error(getattr(np, name), x, axis=axis)
    same_outcome(lambda: tj.jit(lambda x: getattr(np, name)(x, axis=axis))(x), expected, error)


# ------------------------------------------------------------------------------------------------ 8. lists
def test_ragged_list_argument_says_lists_are_pytrees():
    f = tj.jit(lambda x: np.sum(x))
    with pytest.raises(ConcretizationError, match=r"pytree.*np\.asarray"):
        f([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match=r"ragged.*pytree"):
        tj.jit(lambda x: tj.numpy.sum(x))([[1.0, 2.0], [3.0]])
    assert_same(f(np.asarray([[1.0, 2.0], [3.0, 4.0]])), np.float64(10.0))


# ------------------------------------------------------------------------------------------------ (a) promotion
PY_INTS = [0, 1, 2, 3, -1, -2, 7, 2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**40, -2**40, 2**63 - 1]
PY_FLOATS = [0.0, 0.5, -1.5, 2.0, -3.25, 1e300]
SMALL = [-2, -1, 0, 1, 2, 3]


@st.composite
def operands(draw, kinds=("int", "float", "bool", "npscalar", "0d", "array")):
    """(description, value, passed as an argument?): Python scalars (weak), numpy scalars, 0-d arrays, arrays."""
    what = draw(st.sampled_from(kinds))
    if what == "int":
        v = draw(st.sampled_from(PY_INTS))
    elif what == "float":
        v = draw(st.sampled_from(PY_FLOATS))
    elif what == "bool":
        v = draw(st.booleans())
    else:
        dt = draw(st.sampled_from(SUPPORTED))
        vals = draw(st.lists(st.sampled_from(SMALL + [0.5, -1.5]), min_size=3, max_size=3))
        arr = np.array(vals).astype(dt)
        v = arr[0][()] if what == "npscalar" else arr[0].copy() if what == "0d" else arr
        v = dt.type(v) if what == "npscalar" else v
    return what, v, draw(st.booleans())


def _check_ufunc(name, ops):
    uf = getattr(np, name)
    vals = [v for _, v, _ in ops]
    note(f"np.{name}{tuple((w, v, 'arg' if a else 'const') for w, v, a in ops)}")
    expected, error = numpy_or_error(uf, *vals)
    if expected is not None and expected.dtype not in T.SUPPORTED_DTYPES:  # results tracejit refuses
        return
    args = [v for _, v, a in ops if a]

    def traced(*a):
        it = iter(a)
        return uf(*[next(it) if is_arg else v for _, v, is_arg in ops])
    # strict_ieee: the default allows rewrites such as 0 / x -> 0 that change nan and inf (see DESIGN.md)
    same_outcome(lambda: tj.jit(traced, strict_ieee=True)(*args), expected, error, err_msg=f"np.{name}")


BINARY = sorted(BINARY_UFUNCS)
UNARY = sorted(set(UNARY_UFUNCS) - {"positive"})


STRONG = ("npscalar", "0d", "array")


@settings(max_examples=150)
@given(name=st.sampled_from(BINARY), a=operands(STRONG), b=operands(), swap=st.booleans())
def test_binary_promotion_matches_numpy(name, a, b, swap):
    """A typed operand (where promotion happens) with any other, on either side."""
    _check_ufunc(name, [b, a] if swap else [a, b])


@settings(max_examples=50)
@given(name=st.sampled_from(UNARY), a=operands())
def test_unary_promotion_matches_numpy(name, a):
    _check_ufunc(name, [a])


@pytest.mark.slow
@settings(max_examples=1000)
@given(name=st.sampled_from(BINARY + UNARY), a=operands(STRONG), b=operands(), swap=st.booleans())
def test_promotion_matches_numpy_long(name, a, b, swap):
    _check_ufunc(name, ([b, a] if swap else [a, b]) if name in BINARY_UFUNCS else [b])


# ------------------------------------------------------------------------------------------------ (a) reductions
REDUCTIONS = ["sum", "prod", "max", "min", "amax", "amin", "any", "all", "argmax", "argmin", "mean", "var", "std"]
EDGE_SHAPES = [(), (0,), (1,), (0, 3), (3, 0), (1, 3), (3, 1), (1, 0), (0, 1), (0, 0), (2, 1, 0)]


@st.composite
def reduction_cases(draw):
    name = draw(st.sampled_from(REDUCTIONS))
    shape = draw(st.sampled_from(EDGE_SHAPES))
    nd = len(shape)
    axes = [None] + list(range(-max(nd, 1), max(nd, 1)))
    if name not in ("argmax", "argmin") and nd >= 2:
        axes += [(0, 1), (-1, 0)]
    axis = draw(st.sampled_from(axes))
    kw = {"axis": axis}
    if draw(st.booleans()):
        kw["keepdims"] = True
    dt = draw(st.sampled_from(SUPPORTED))
    x = (np.arange(int(np.prod(shape))).reshape(shape) % 3 - 1).astype(dt)
    return name, x, kw


def _check_reduction(name, x, kw):
    note(f"np.{name}(x of shape {x.shape} {x.dtype}, **{kw})")
    expected, error = numpy_or_error(getattr(np, name), x, **kw)
    if expected is not None and expected.dtype not in T.SUPPORTED_DTYPES:
        return
    same_outcome(lambda: tj.jit(lambda x: getattr(np, name)(x, **kw))(x), expected, error, err_msg=name)


@settings(max_examples=120)
@given(case=reduction_cases())
def test_reductions_on_empty_and_length_one_axes_match_numpy(case):
    _check_reduction(*case)


@pytest.mark.slow
@settings(max_examples=1500)
@given(case=reduction_cases())
def test_reductions_on_edges_match_numpy_long(case):
    _check_reduction(*case)


# ------------------------------------------------------------------------------------------------ (b) keywords
X = np.array([[1.5, -2.0, 3.0], [0.25, 4.0, -1.0]])
XI = np.array([[2**30, 2**30, 7], [-3, 5, 2**30]], np.int32)

# function -> keyword -> (positional args, keyword arguments); the case's call must differ from the call without
# that keyword, in numpy, so that a keyword tracejit ignored would fail it
KEYWORD_CASES = {
    "sum": {"axis": ((X,), {"axis": 1}), "dtype": ((XI,), {"dtype": np.int32}),
            "keepdims": ((X,), {"keepdims": True}), "initial": ((X,), {"initial": 10.0})},
    "prod": {"axis": ((X,), {"axis": 0}), "dtype": ((XI,), {"dtype": np.int32}),
             "keepdims": ((X,), {"axis": 1, "keepdims": True}), "initial": ((X,), {"initial": 2.0})},
    "max": {"axis": ((X,), {"axis": 0}), "keepdims": ((X,), {"keepdims": True}), "initial": ((X,), {"initial": 9.0})},
    "min": {"axis": ((X,), {"axis": 1}), "keepdims": ((X,), {"keepdims": True}),
            "initial": ((X,), {"initial": -9.0})},
    "any": {"axis": ((X > 2,), {"axis": 1}), "keepdims": ((X > 2,), {"keepdims": True})},
    "all": {"axis": ((X > 0,), {"axis": 0}), "keepdims": ((X > 0,), {"keepdims": True})},
    "argmax": {"axis": ((X,), {"axis": 0}), "keepdims": ((X,), {"axis": 1, "keepdims": True})},
    "mean": {"axis": ((X,), {"axis": 1}), "dtype": ((X,), {"dtype": np.float32}),
             "keepdims": ((X,), {"keepdims": True})},
    "var": {"axis": ((X,), {"axis": 0}), "dtype": ((X,), {"dtype": np.float32}), "ddof": ((X,), {"ddof": 1}),
            "keepdims": ((X,), {"keepdims": True}), "correction": ((X,), {"correction": 1})},
    "clip": {"a_min": ((X,), {"a_min": 0.0, "a_max": 5.0}), "a_max": ((X,), {"a_min": -5.0, "a_max": 1.0}),
             "min": ((X,), {"min": 0.0}),
             "max": ((X,), {"max": 1.0}), "dtype": ((X, 0.0, 1.0), {"dtype": np.float32})},
    "reshape": {"shape": ((X,), {"shape": (3, 2)})},
    "transpose": {"axes": ((X[None],), {"axes": (2, 0, 1)})},
    "squeeze": {"axis": ((X[None, :, None],), {"axis": 0})},
    "size": {"axis": ((X,), {"axis": 1})},
    "concatenate": {"axis": (([X, X],), {"axis": 1}), "dtype": (([X, X],), {"dtype": np.float32}),
                    "casting": (([X, X],), {"dtype": np.int64, "casting": "unsafe"})},
    "stack": {"axis": (([X, X],), {"axis": 2}), "dtype": (([X, X],), {"dtype": np.float32}),
              "casting": (([X, X],), {"dtype": np.int32, "casting": "unsafe"})},
    "zeros_like": {"dtype": ((X,), {"dtype": np.int32}), "shape": ((X,), {"shape": (3,)})},
    "full_like": {"dtype": ((X, 2.5), {"dtype": np.int32}), "shape": ((X, 2.5), {"shape": (4,)})},
    "array": {"dtype": ((X,), {"dtype": np.int32}), "ndmin": ((X,), {"ndmin": 4})},
    "asarray": {"dtype": ((X,), {"dtype": np.float32})},
    "ascontiguousarray": {"dtype": ((X,), {"dtype": np.int64})},
    "matmul": {"dtype": ((X, X.T), {"dtype": np.float32}),
               "casting": ((X, X.T), {"dtype": np.int64, "casting": "unsafe"})},
    "einsum": {"dtype": (("ij,kj->ik", X, X), {"dtype": np.float32, "casting": "same_kind"}),
               "casting": (("ij,kj->ik", X, X), {"dtype": np.int64, "casting": "unsafe"})},
    "tensordot": {"axes": ((X, X.T), {"axes": 1})},
    "add": {"dtype": ((XI, XI), {"dtype": np.int64}),
            "casting": ((X, X), {"dtype": np.int64, "casting": "unsafe"})},
    "sqrt": {"dtype": ((X * X,), {"dtype": np.float32})},
}
KEYWORD_CASES.update(MORE_KEYWORD_CASES)  # issue 14's functions (tests/numpy_more_cases.py)
# accepted keywords that cannot change a value (memory layout, copies, dispatch), per function
NO_VALUE_EFFECT = {"order", "subok", "copy", "like", "device", "optimize", "ndmax"}
# keywords tracejit refuses: a call with a non-default value must raise rather than be ignored
REFUSED = {"out": np.empty((2, 3)), "where": X > 0, "mean": np.zeros((1, 3)), "signature": "dd->d"}
ALIASES = {"ones_like": "zeros_like", "amax": "max", "amin": "min", "argmin": "argmax", "std": "var", "concat": "concatenate",
           "permute_dims": "transpose", "empty_like": "zeros_like"}


def _keywords(fn):
    """Keyword parameters of tracejit's implementation (the first, array parameter(s) excluded)."""
    params = list(inspect.signature(fn).parameters.values())
    return [p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is not inspect.Parameter.empty]


def _np_call(name, args, kw):
    return getattr(np, name)(*args, **kw)


def _jit_call(name, args, kw):
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    lists = [a for a in args if isinstance(a, list)]

    def f(*arrs):
        it = iter(arrs)
        real = [next(it) if isinstance(a, np.ndarray) else [next(it) for _ in a] if isinstance(a, list) else a
                for a in args]
        return getattr(tj.numpy, name)(*real, **kw)
    return tj.jit(f)(*arrays, *[x for lst in lists for x in lst])


def test_every_accepted_keyword_is_covered():
    """A keyword added to an implementation needs a case here (or a reason it cannot change a value)."""
    missing = []
    for name, fn in IMPLS.items():
        if not hasattr(np, name) or name in ("result_type", "where", "fft"):  # np.fft is the module
            continue
        cases = KEYWORD_CASES.get(ALIASES.get(name, name), {})
        for k in _keywords(fn):
            if k not in cases and k not in NO_VALUE_EFFECT and k not in REFUSED and k not in MORE_REFUSED.get(name, ()):
                if getattr(fn, "takes_scalars", False) and k in KEYWORD_CASES["add"]:
                    continue  # every ufunc shares the ufunc keywords tested with np.add / np.sqrt
                if name in ("dot", "outer", "inner", "vdot") or k in ("axis1", "axis2", "source", "destination",
                                                                      "fill_value"):
                    continue  # positional in practice and exercised by test_core_api
                missing.append(f"{name}({k}=)")
    assert not missing, f"keywords with no case in KEYWORD_CASES: {missing}"


@pytest.mark.parametrize("name,key", [(n, k) for n, ks in KEYWORD_CASES.items() for k in ks])
def test_keyword_changes_result_as_numpy(name, key):
    args, kw = KEYWORD_CASES[name][key]
    expected, error = numpy_or_error(_np_call, name, args, kw)
    assert error is None, error
    without = {k: v for k, v in kw.items() if k != key}
    if key == "casting":
        without["casting"] = "same_kind"
    base, base_error = numpy_or_error(_np_call, name, args, without)
    assert base_error is not None or base.shape != expected.shape or base.dtype != expected.dtype \
        or not np.array_equal(base, expected), f"the case for {name}({key}=) does not change numpy's result"
    same_outcome(lambda: _jit_call(name, args, kw), expected, None, err_msg=f"{name}({key}=)")


@pytest.mark.parametrize("name", ["sum", "max", "any", "mean", "var", "argmax", "add", "clip", "concatenate",
                                  "matmul", "einsum", "outer", "dot"])
def test_refused_keywords_raise(name):
    fn = IMPLS[name]
    keys = [k for k in ("out", "where", "mean") if k in _keywords(fn) or name in ("add", "clip", "matmul",
                                                                                    "einsum")]
    args = {"concatenate": ([X, X],), "matmul": (X, X.T), "einsum": ("ij,kj->ik", X, X), "outer": (X, X),
            "dot": (X, X.T), "add": (X, X)}.get(name, (X,))
    for k in keys:
        if name in ("add",) and k == "mean" or name in ("clip", "matmul", "einsum", "outer", "dot") and k != "out":
            continue
        with pytest.raises((UnsupportedError, TypeError)):
            _jit_call(name, args, {k: REFUSED[k]})
