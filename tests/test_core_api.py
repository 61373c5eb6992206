"""The public API of issue 2: jit and its cache, pytrees, weak scalars, statics, lower/make_ir, tnp, nn."""
from __future__ import annotations

import functools
import threading

import numpy as np
import pytest
import scipy.special

import tracejit as tj
from tracejit.ir.types import SUPPORTED_DTYPES
import tracejit.nn as tnn
import tracejit.numpy as tnp
from conftest import assert_same
from tracejit.ir.primitives import BINARY_UFUNCS, UNARY_UFUNCS

rng = np.random.default_rng(0)


def rand(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------------------------------ jit forms
def _body(x, y):
    """adds and scales"""
    return x * 2 + y


def test_jit_as_plain_decorator():
    f = tj.jit(_body)
    x, y = rand(4), rand(4)
    assert_same(f(x, y), x * 2 + y)


def test_jit_as_decorator_with_arguments():
    @tj.jit(static_argnums=1)
    def f(x, n):
        return x ** n

    x = rand(5)
    assert_same(f(x, 3), x ** 3)


def test_jit_as_bare_decorator_keeps_metadata():
    @tj.jit
    def scaled_sum(x):
        """the docstring survives"""
        return x.sum()

    assert scaled_sum.__name__ == "scaled_sum"
    assert scaled_sum.__doc__ == "the docstring survives"
    assert scaled_sum.__wrapped__.__name__ == "scaled_sum"
    assert not isinstance(scaled_sum.__wrapped__, tj.Jitted)


def test_jit_call_form_keeps_metadata():
    f = tj.jit(_body)
    assert f.__name__ == "_body"
    assert f.__doc__ == "adds and scales"
    assert f.__wrapped__ is _body


def test_jit_on_a_method():
    class Model:
        def __init__(self, w):
            self.w = w

        @functools.partial(tj.jit, static_argnums=0)
        def apply(self, x):
            return x * self.w

    m = Model(3.0)
    assert Model.__hash__ is not None
    assert_same(m.apply(np.arange(3.0)), np.arange(3.0) * 3.0)


# ------------------------------------------------------------------------------------------------ pytrees
def test_pytree_inputs_and_outputs():
    @tj.jit
    def f(params, batch):
        w, b = params["w"], params["b"]
        x, (y,) = batch
        h = x @ w + b
        return {"out": h, "stats": [h.sum(), (h.max(), y.mean())]}

    params = {"w": rand(3, 2), "b": rand(2)}
    batch = [rand(5, 3), (rand(5),)]
    got = f(params, batch)
    h = batch[0] @ params["w"] + params["b"]
    assert set(got) == {"out", "stats"}
    assert isinstance(got["stats"], list) and isinstance(got["stats"][1], tuple)
    assert_same(got["out"], h)
    assert_same(got["stats"][0], h.sum())
    assert_same(got["stats"][1][0], h.max())
    assert_same(got["stats"][1][1], batch[1][0].mean())


def test_outputs_are_numpy_arrays_even_for_scalars():
    out = tj.jit(lambda x: x.sum())(np.arange(4.0))
    assert isinstance(out, np.ndarray) and out.shape == () and out == 6.0


def test_output_passthrough_input_is_not_aliased_for_mutation():
    x = np.arange(3.0)
    out = tj.jit(lambda x: x)(x)
    assert_same(out, x)


def test_dict_key_order_does_not_change_result():
    f = tj.jit(lambda d: d["a"] - d["b"])
    a, b = rand(3), rand(3)
    assert_same(f({"a": a, "b": b}), a - b)
    assert_same(f({"b": b, "a": a}), a - b)


def test_none_in_pytree():
    f = tj.jit(lambda t: t[0] + 1 if t[1] is None else t[0])
    assert_same(f((np.arange(3), None)), np.arange(3) + 1)


def test_list_argument_is_converted_like_np_asarray():
    f = tj.jit(lambda x: x * 2)
    assert_same(f(np.asarray([1.0, 2.0, 3.0])), np.array([2.0, 4.0, 6.0]))


# ------------------------------------------------------------------------------------------------ weak scalars
def test_python_float_is_traced_once():
    f = tj.jit(lambda x, s: x * s)
    x = rand(4)
    assert_same(f(x, 2.0), x * 2.0)
    assert_same(f(x, 3.0), x * 3.0)
    assert f.cache_info().misses == 1
    assert f.cache_info().hits == 1


@pytest.mark.parametrize("dtype,scalar", [(np.float32, 2.0), (np.float32, 3), (np.int32, 3), (np.int64, 7),
                                          (np.int32, 2.5), (np.bool_, 1), (np.bool_, 2.0), (np.float32, True)])
def test_weak_scalar_promotion_follows_numpy2(dtype, scalar):
    f = tj.jit(lambda x, s: x * s)
    x = np.arange(1, 5).astype(dtype)
    assert_same(f(x, scalar), x * scalar)


def test_weak_scalar_keeps_float32_in_expression():
    f = tj.jit(lambda x, s: np.exp(x * s) + 1.5)
    x = rand(8, dtype=np.float32)
    out = f(x, 0.5)
    assert out.dtype == np.float32
    assert_same(out, np.exp(x * np.float32(0.5)) + np.float32(1.5))


def test_numpy_scalar_is_strong():
    f = tj.jit(lambda x, s: x * s)
    x = rand(4, dtype=np.float32)
    assert_same(f(x, np.float64(2.0)), x * np.float64(2.0))
    assert f(x, np.float64(2.0)).dtype == np.float64


def test_only_python_scalars():
    f = tj.jit(lambda a, b: a / b)
    assert_same(f(1, 2), np.asarray(0.5))
    assert_same(f(3.0, 2), np.asarray(1.5))


# ------------------------------------------------------------------------------------------------ statics
def test_static_argnums_new_value_traces_again():
    f = tj.jit(lambda x, axis: x.sum(axis=axis), static_argnums=1)
    x = rand(3, 4)
    assert_same(f(x, 0), x.sum(0))
    assert_same(f(x, 1), x.sum(1))
    assert_same(f(x, 0), x.sum(0))
    assert f.cache_info().misses == 2
    assert f.cache_info().hits == 1


def test_static_argnames_by_keyword_and_position():
    @tj.jit(static_argnames="mode")
    def f(x, mode="double"):
        return x * 2 if mode == "double" else x * 3

    x = rand(3)
    assert_same(f(x), x * 2)
    assert_same(f(x, mode="triple"), x * 3)
    assert_same(f(x, mode="double"), x * 2)


def test_static_argument_controls_python_control_flow():
    @tj.jit(static_argnums=(1,))
    def f(x, n):
        for _ in range(n):
            x = np.sin(x)
        return x

    x = rand(5)
    assert_same(f(x, 3), np.sin(np.sin(np.sin(x))))


def test_unhashable_static_argument_is_a_type_error():
    f = tj.jit(lambda x, axes: x.sum(axis=tuple(axes)), static_argnums=1)
    with pytest.raises(TypeError, match="hashable"):
        f(rand(2, 3), [0, 1])
    assert_same(f(np.ones((2, 3)), (0, 1)), np.asarray(6.0))


# ------------------------------------------------------------------------------------------------ constants
def test_closed_over_arrays_are_constants():
    w = rand(3, 3)
    f = tj.jit(lambda x: x @ w)
    x = rand(2, 3)
    assert_same(f(x), x @ w)
    g = tj.make_ir(lambda x: x @ w)(x)
    assert len(g.inputs) == 1


def test_closure_constant_is_baked_at_trace_time():
    w = np.ones(3)
    f = tj.jit(lambda x: x + w)
    x = np.zeros(3)
    assert_same(f(x), x + 1)
    w[:] = 5  # the caller mutating its array afterwards does not reach into the compiled program
    assert_same(f(x), x + 1)


# ------------------------------------------------------------------------------------------------ cache
def test_cache_info_is_a_named_tuple():
    f = tj.jit(lambda x: x + 1)
    info = f.cache_info()
    assert info == (0, 0, 0)
    assert (info.hits, info.misses, info.size) == (0, 0, 0)
    f(np.ones(3))
    f(np.ones(3))
    f(np.ones(3, np.float32))
    assert f.cache_info() == (1, 2, 2)


def test_new_length_does_not_retrace():
    f = tj.jit(lambda x, y: np.exp(-x) * y + x.sum(axis=0))
    for n in (1000, 50, 7, 2, 3):
        x, y = rand(n, 3), rand(3)
        assert_same(f(x, y), np.exp(-x) * y + x.sum(axis=0))
    assert f.cache_info().misses == 1


@pytest.mark.parametrize("first,second", [
    (np.ones((3, 4)), np.ones(12)),                       # rank
    (np.ones((3, 4)), np.ones((3, 4), np.float32)),       # dtype
    (np.ones((3, 4)), np.ones((1, 4))),                   # size-1 pattern
    (np.ones((3, 4)), np.ones((4, 3)).T),                 # layout
])
def test_signature_change_retraces(first, second):
    f = tj.jit(lambda x: x * 2 + 1)
    assert_same(f(first), first * 2 + 1)
    assert_same(f(second), second * 2 + 1)
    assert f.cache_info().misses == 2


def test_size_zero_length_is_just_another_length():
    f = tj.jit(lambda x: (x * 2).sum(axis=0))
    assert_same(f(np.ones((5, 3))), np.full(3, 10.0))
    assert_same(f(np.ones((0, 3))), np.zeros(3))


@pytest.mark.parametrize("make", [
    lambda a: a[::2],
    lambda a: a[:, ::-1],
    lambda a: a.T,
    lambda a: a[1:, 2:5],
    lambda a: np.broadcast_to(a[:1], a.shape),
])
def test_non_contiguous_inputs(make):
    base = rand(6, 7)
    x = make(base)
    f = tj.jit(lambda x: np.tanh(x) * 3 - x.sum(axis=-1, keepdims=True))
    assert_same(f(x), np.tanh(x) * 3 - x.sum(axis=-1, keepdims=True))


def test_caller_arrays_are_written_as_numpy_would():  # issue 13: in-place writes into arguments reach the caller
    x = rand(5)
    keep = x.copy()

    @tj.jit
    def f(x):
        x += 1
        x *= 2
        return x

    assert_same(f(x), (keep + 1) * 2)
    np.testing.assert_array_equal(x, (keep + 1) * 2)


def test_threads_calling_one_jitted_function():
    f = tj.jit(lambda x: (x * 2 + 1).sum(axis=-1))
    shapes = [(n,) for n in range(1, 9)] + [(n, 3) for n in range(1, 9)] + [(2, n, 2) for n in range(1, 5)]
    errors = []

    def work(i):
        try:
            for k in range(8):
                shape = shapes[(i + k) % len(shapes)]
                dt = (np.float64, np.float32, np.int64)[(i + k) % 3]
                x = np.arange(int(np.prod(shape))).reshape(shape).astype(dt)
                got = f(x)
                np.testing.assert_allclose(got, (x * 2 + 1).sum(axis=-1))
                assert got.dtype == (x * 2 + 1).sum(axis=-1).dtype
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    info = f.cache_info()
    assert info.size == info.misses  # no signature was compiled twice


def test_exception_during_tracing_leaves_cache_usable():
    @tj.jit
    def f(x, y):
        return x + y

    f(np.ones(3), np.ones(3))
    before = f.cache_info()
    with pytest.raises(ValueError):
        f(np.ones((2, 3)), np.ones((4, 3)))   # cannot broadcast: found while tracing (static... no: at run time)
    with pytest.raises(ValueError):
        f(np.ones(3), np.ones((2,) * 1 + (4,)))
    assert f.cache_info().size >= before.size
    assert_same(f(np.ones(3), np.ones(3)), np.full(3, 2.0))

    calls = []

    @tj.jit
    def g(x):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first trace fails")
        return x - 1

    with pytest.raises(RuntimeError, match="first trace fails"):
        g(np.ones(2))
    assert g.cache_info() == (0, 0, 0)
    assert_same(g(np.ones(2)), np.zeros(2))
    assert g.cache_info() == (0, 1, 1)


# ------------------------------------------------------------------------------------------------ lower / make_ir
def _lowered():
    f = tj.jit(lambda x, y: np.exp(-x) * y + x.sum(axis=0))
    return f.lower(rand(8, 3), rand(3))


def test_lower_traced_and_optimized_text():
    lo = _lowered()
    for stage in ("traced", "optimized"):
        text = lo.as_text(stage)
        assert isinstance(text, str)
        assert "exp" in text and "sum" in text and "negative" in text or "exp" in text
    assert str(lo) == lo.as_text("optimized")


def test_lower_does_not_run_or_fill_the_cache():
    f = tj.jit(lambda x: x + 1)
    f.lower(np.ones(3))
    assert f.cache_info().hits == 0


def test_lower_llvm_text():
    text = _lowered().as_text("llvm")
    assert "define" in text


def test_lower_asm_text():
    text = _lowered().as_text("asm")
    assert text.strip()
    assert any(tok in text for tok in ("ret", ".text", "mov", "vmov"))


def test_lower_unknown_stage():
    with pytest.raises(ValueError, match="stage"):
        _lowered().as_text("bytecode")


def test_num_kernels_is_an_int():
    n = _lowered().num_kernels
    assert isinstance(n, int) and not isinstance(n, bool)
    assert n >= 0


def test_make_ir_ops_are_numpy_names():
    def f(x, y):
        return np.exp(-x) * y - np.log(x) / y + (x @ y.T).max(axis=0).sum()

    g = tj.make_ir(f, optimize=False)(rand(4, 3), rand(4, 3))
    assert isinstance(g.ops, list)
    for name in ("negative", "exp", "multiply", "log", "divide", "subtract", "matmul", "transpose", "max", "sum",
                 "add"):
        assert name in g.ops, (name, g.ops)
    text = str(g)
    assert "exp" in text and "matmul" in text


def test_make_ir_optimized_runs_passes():
    def f(x):
        return np.where(x > 0, x, 0.0).reshape(-1)

    raw = tj.make_ir(f, optimize=False)(rand(2, 3))
    opt = tj.make_ir(f)(rand(2, 3))
    assert "where" in raw.ops and "greater" in raw.ops and "reshape" in raw.ops
    assert len(opt.ops) <= len(raw.ops)


def test_make_ir_static_argnums():
    g = tj.make_ir(lambda x, n: x ** n, static_argnums=1)(rand(3), 2)
    assert "power" in g.ops or "square" in g.ops or "multiply" in g.ops


def test_make_ir_broadcast_and_views():
    g = tj.make_ir(lambda x: np.broadcast_to(x, (4, 3)).T[::-1], optimize=False)(rand(3))
    assert "broadcast_to" in g.ops and "transpose" in g.ops


# ------------------------------------------------------------------------------------------------ tracejit.numpy / nn
@pytest.mark.parametrize("name,args", [
    ("exp", (np.linspace(-2, 2, 5),)),
    ("maximum", (np.arange(5.0), 2.0)),
    ("where", (np.arange(5) > 2, np.arange(5.0), -1.0)),
    ("sum", (np.arange(6.0).reshape(2, 3),)),
    ("reshape", (np.arange(6.0), (3, 2))),
    ("concatenate", ([np.ones(2), np.zeros(3)],)),
])
def test_tnp_on_arrays_and_tracers(name, args):
    expected = getattr(np, name)(*args)
    on_arrays = getattr(tnp, name)(*args)
    assert_same(np.asarray(on_arrays), expected)
    if name == "concatenate":
        traced = tj.jit(lambda a, b: tnp.concatenate([a, b]))(*args[0])
    else:
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        rest = args[len(arrays):]
        traced = tj.jit(lambda *a: getattr(tnp, name)(*a, *rest))(*arrays)
    assert_same(traced, expected)


def test_tnp_function_names():
    assert tnp.exp.__name__ == "exp"
    for name in ("sum", "mean", "where", "matmul", "einsum", "tanh", "clip", "stack", "transpose"):
        assert callable(getattr(tnp, name)), name


NN_REFERENCE = {
    "sigmoid": lambda x, axis: scipy.special.expit(x),
    "softplus": lambda x, axis: np.logaddexp(0, x),
    "relu": lambda x, axis: np.maximum(x, 0),
    "softmax": lambda x, axis: scipy.special.softmax(x, axis=axis),
    "log_softmax": lambda x, axis: scipy.special.log_softmax(x, axis=axis),
    "logsumexp": lambda x, axis: scipy.special.logsumexp(x, axis=axis),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nn_functions_match_scipy(dtype):
    x = (rand(4, 5) * 30).astype(dtype)
    x[0, 0] = 800 if dtype == np.float64 else 80  # stable at large inputs
    x[1, 1] = -800 if dtype == np.float64 else -80
    cases = {}
    for name in sorted(NN_REFERENCE):
        fn = getattr(tnn, name)
        axes = ({},) if name in ("sigmoid", "softplus", "relu") else ({"axis": 0}, {"axis": -1}, {"axis": 1})
        for kw in axes:
            cases[f"{name}({kw})"] = (fn, kw, NN_REFERENCE[name](x, kw.get("axis", -1)).astype(dtype))
    cases["logsumexp(axis=None)"] = (tnn.logsumexp, {}, np.asarray(scipy.special.logsumexp(x)).astype(dtype))
    cases["logsumexp(keepdims)"] = (tnn.logsumexp, {"axis": 1, "keepdims": True},
                                    scipy.special.logsumexp(x, axis=1, keepdims=True).astype(dtype))
    traced = tj.jit(lambda x: {k: fn(x, **kw) for k, (fn, kw, _) in cases.items()})(x)
    for k, (fn, kw, ref) in cases.items():
        assert_same(traced[k], ref, rtol=1e-5 if dtype == np.float32 else 1e-12,
                    atol=1e-6 if dtype == np.float32 else 1e-300, err_msg=k)
        assert_same(np.asarray(fn(x, **kw)), ref, check_dtype=False, rtol=1e-5, atol=1e-6, err_msg=k)  # eager


def test_scipy_expit_on_tracer():
    x = rand(10)
    assert_same(tj.jit(scipy.special.expit)(x), scipy.special.expit(x))


def test_exported_names():
    for name in ("jit", "make_ir", "grad", "value_and_grad", "function", "shared", "pp", "tensor", "numpy", "nn",
                 "devices", "ConcretizationError"):
        assert hasattr(tj, name), name
    assert issubclass(tj.ConcretizationError, TypeError)


# ================================================================================================ numpy coverage
def check(f, *args, rtol=None, atol=None, **static):
    """jit(f)(*args) equals f(*args) run by numpy: values, shape and dtype."""
    with np.errstate(all="ignore"):
        expected = f(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args], **static)  # may mutate
        got = tj.jit(functools.partial(f, **static))(*args)
    if isinstance(expected, (tuple, list)):
        assert type(got) is type(expected) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same(g, e, rtol=rtol, atol=atol)
    else:
        assert_same(got, expected, rtol=rtol, atol=atol)


def check_many(cases, *args, rtol=None, atol=None):
    """Several numpy expressions of the same arguments in ONE jitted function (one compile), each compared with
    numpy; the case's name is in the failure message."""
    copies = lambda: [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]  # noqa: E731
    with np.errstate(all="ignore"):
        expected = {k: f(*copies()) for k, f in cases.items()}
        got = tj.jit(lambda *xs: {k: f(*xs) for k, f in cases.items()})(*args)
    assert set(got) == set(cases)
    for k, e in expected.items():
        if isinstance(e, (tuple, list)):
            for g_, e_ in zip(got[k], e):
                assert_same(g_, e_, rtol=rtol, atol=atol, err_msg=k)
        else:
            assert_same(got[k], e, rtol=rtol, atol=atol, err_msg=k)


A = rand(3, 4)
B = rand(3, 4) + 3
V = rand(4)
I = rng.integers(-5, 6, size=(3, 4))
J = rng.integers(1, 4, size=(3, 4)).astype(np.int32)
M = A > 0
N = B > 3

OPERATORS = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "truediv": lambda x, y: x / y, "floordiv": lambda x, y: x // y, "mod": lambda x, y: x % y,
    "pow": lambda x, y: np.abs(x) ** y, "lt": lambda x, y: x < y, "le": lambda x, y: x <= y,
    "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y, "eq": lambda x, y: x == y, "ne": lambda x, y: x != y,
}


@pytest.mark.parametrize("pair", ["ff", "fv", "ii", "ij", "if", "fs", "sf", "is", "si"])
def test_binary_operators(pair):
    if pair in ("fs", "sf", "is", "si"):  # a Python scalar on one side: the plain and the reflected operator
        scalar, arr = (2.5, A) if "f" in pair else (3, I if pair == "is" else J)
        left = pair[0] == "s"
        cases = {op: (lambda a, f=f: f(scalar, a) if left else f(a, scalar)) for op, f in OPERATORS.items()}
        check_many(cases, arr)
        return
    vals = {"f": A, "v": V, "i": I, "j": J}

    def case(f, op):
        def g(x, y, positive):
            if op in ("floordiv", "mod", "pow") and pair == "ii":
                y = positive  # no integer division by zero, no negative integer powers
            return f(x, y)
        return g
    check_many({op: case(f, op) for op, f in OPERATORS.items()}, vals[pair[0]], vals[pair[1]], J)


def test_bitwise_operators():
    ops = {"and": lambda x, y: x & y, "or": lambda x, y: x | y, "xor": lambda x, y: x ^ y}
    cases = {}
    for name, f in ops.items():
        cases[f"{name} bool"] = lambda m, n, i, j, f=f: f(m, n)
        cases[f"{name} int"] = lambda m, n, i, j, f=f: f(i, j)
        cases[f"{name} bool,True"] = lambda m, n, i, j, f=f: f(m, True)
        cases[f"{name} True,bool"] = lambda m, n, i, j, f=f: f(True, m)
        cases[f"{name} int,6"] = lambda m, n, i, j, f=f: f(i, 6)
        cases[f"{name} 6,int32"] = lambda m, n, i, j, f=f: f(6, j)
    check_many(cases, M, N, I, J)


def test_unary_operators():
    check_many({"-float": lambda a, j, i, m: -a, "-int32": lambda a, j, i, m: -j, "+int": lambda a, j, i, m: +i,
                "abs int": lambda a, j, i, m: abs(i), "abs float": lambda a, j, i, m: abs(a),
                "~bool": lambda a, j, i, m: ~m, "~int": lambda a, j, i, m: ~i}, A, J, I, M)


def test_matmul_operator_and_reflected():
    check_many({"mm": lambda a, b, v: a @ b.T, "reflected": lambda a, b, v: A @ b.T, "mv": lambda a, b, v: a @ v,
                "vv": lambda a, b, v: v @ v}, A, B, V)


def test_inplace_operators_rebind():
    def f(x, y, m, n, w):
        x = x + 0
        x += y
        x -= 1
        x *= y
        x /= 2
        x **= 2
        x //= 1.5
        x %= 7
        return x

    def g(x, y, m, n, w):
        m &= n
        m |= n
        m ^= n
        return m

    def h(x, y, m, n, w):
        x @= w
        return x

    check_many({"arith": f, "bitwise": g, "matmul": h}, A, B, M, N, rand(4, 4))
    x, m = A.copy(), M.copy()
    tj.jit(lambda x, m: (h(x, 0, 0, 0, np.eye(4) * 2), g(0, 0, m, N, 0)))(x, m)
    np.testing.assert_allclose(x, A @ (np.eye(4) * 2))  # the caller's arrays are written, as numpy would
    np.testing.assert_array_equal(m, ((M & N) | N) ^ N)


UNARY = [n for n in UNARY_UFUNCS if any(t.startswith("d->") for t in getattr(np, n).types)]  # float ufuncs
BINARY = [n for n in BINARY_UFUNCS if any(t.startswith("dd->") for t in getattr(np, n).types)]
SPECIALS = np.array([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, 1e-310, -3.7, 700.0, -700.0, np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unary_ufuncs(dtype):
    x = np.concatenate([rand(20) * 3, SPECIALS]).astype(dtype)
    check_many({name: getattr(np, name) for name in UNARY}, x, rtol=4e-6 if dtype == np.float32 else 1e-13,
               atol=0 if dtype == np.float32 else 1e-300)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_unary_ufuncs_on_ints_and_bools(dtype):
    """numpy's answer where numpy computes in a supported dtype; a TypeError naming the dtype where it does not
    (square of a bool is int8, sqrt of a bool is float16)."""
    names = ["negative", "absolute", "sign", "square", "floor", "rint", "sqrt", "exp", "sin", "isnan",
             "logical_not", "reciprocal", "invert", "positive"]
    x = np.arange(-3, 4).astype(dtype) if dtype != np.bool_ else np.array([True, False, True])
    good = {}
    for name in names:
        with np.errstate(all="ignore"):
            try:
                expected = getattr(np, name)(x)
            except TypeError:
                with pytest.raises(TypeError):
                    tj.jit(getattr(np, name))(x)
                continue
        if expected.dtype not in SUPPORTED_DTYPES:  # sqrt of a bool is float16: supported now
            with pytest.raises(TypeError, match=str(expected.dtype)):
                tj.jit(getattr(np, name))(x)
            continue
        good[name] = getattr(np, name)
    if "reciprocal" in good and dtype != np.bool_:
        del good["reciprocal"]
        check_many({"reciprocal": np.reciprocal}, np.array([1, -1, 2, -2, 3, -3, 7]).astype(dtype))
    check_many(good, x)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.int32])
def test_binary_ufuncs(dtype):
    x = np.concatenate([rand(12) * 4, SPECIALS[:9]]).astype(dtype) if dtype in (np.float32, np.float64) \
        else np.arange(-10, 11).astype(dtype)
    y = np.roll(x, 3)[::-1].copy()
    cases = {}
    for name in BINARY:
        fy = y
        if dtype in (np.int32, np.int64) and name in ("floor_divide", "remainder", "power"):
            fy = np.where(y == 0, 3, np.abs(y) % 5 if name == "power" else y).astype(dtype)
        cases[name] = lambda x, y, f=getattr(np, name), fy=fy: f(x, fy if fy is not y else y)
        cases[name + " broadcast"] = lambda x, y, f=getattr(np, name), fy=fy: f(x.reshape(3, 7), fy[:7])
    check_many(cases, x, y, rtol=4e-6 if dtype == np.float32 else 1e-13)


def test_integer_division_by_zero_is_numpys():
    """numpy gives 0 for integer x // 0 and x % 0 (with a warning); the process must not crash."""
    x, z = np.arange(-3, 4), np.zeros(7, np.int64)
    check_many({"floor_divide": np.floor_divide, "remainder": np.remainder}, x, z)


def test_scipy_expit_ufunc():
    x = np.concatenate([rand(20) * 30, SPECIALS])
    check_many({"f64": lambda x: scipy.special.expit(x), "f32": lambda x: scipy.special.expit(x.astype(np.float32))},
               x, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ reductions
REDUCTIONS = ["sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "any", "all"]
X3 = rand(3, 4, 5)


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions(name):
    cases = {}
    for axis in [None, 0, 1, -1, (0, 2), (1, 2)]:
        if name in ("argmax", "argmin") and isinstance(axis, tuple):
            continue
        for keepdims in (False, True):
            cases[f"np.{name}(axis={axis}, keepdims={keepdims})"] = \
                lambda x, a=axis, k=keepdims: getattr(np, name)(x, axis=a, keepdims=k)
            if name not in ("amax", "amin"):
                cases[f"x.{name}(axis={axis}, keepdims={keepdims})"] = \
                    lambda x, a=axis, k=keepdims: getattr(x, name)(axis=a, keepdims=k)
    check_many(cases, X3 if name not in ("any", "all") else X3 > 0.5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.float32])
def test_reduction_dtypes(dtype):
    x = (rng.integers(0, 3, size=(4, 6))).astype(dtype)
    cases = {}
    for name in ["sum", "prod", "mean", "var", "max", "argmin", "any"]:
        cases[name] = lambda x, f=getattr(np, name): f(x)
        cases[name + " axis=0"] = lambda x, f=getattr(np, name): f(x, axis=0)
    check_many(cases, x, rtol=1e-6 if dtype == np.float32 else None)


def test_var_std_ddof():
    cases = {}
    for ddof in (0, 1, 2):
        cases[f"var ddof={ddof}"] = lambda x, d=ddof: np.var(x, ddof=d)
        cases[f"std axis=1 ddof={ddof}"] = lambda x, d=ddof: x.std(axis=1, ddof=d, keepdims=True)
        cases[f"std axis=(0,2) ddof={ddof}"] = lambda x, d=ddof: np.std(x, axis=(0, 2), ddof=d)
    check_many(cases, X3)


def test_reduction_dtype_argument_and_ufunc_reduce():
    check_many({"sum int->f32": lambda i, a: np.sum(i, dtype=np.float32),
                "mean f32": lambda i, a: np.mean(a, axis=0, dtype=np.float32),
                "add.reduce": lambda i, a: np.add.reduce(a),
                "maximum.reduce": lambda i, a: np.maximum.reduce(a, axis=1),
                "multiply.reduce": lambda i, a: np.multiply.reduce(a[:2], axis=None)}, I, A)


def test_reductions_over_empty_axis():
    check_many({"sum0": lambda x: x.sum(axis=0), "prod0": lambda x: x.prod(axis=0),
                "any0": lambda x: (x > 0).any(axis=0), "all0": lambda x: (x > 0).all(axis=0),
                "sum": lambda x: x.sum()}, np.ones((0, 3)))


# ------------------------------------------------------------------------------------------------ array functions
FUNCTIONS = {
    "where": (lambda x, y: np.where(x > 0, x, y), (A, B)),
    "where_scalar": (lambda x: np.where(x > 0, x, 0.0), (A,)),
    "where_int_float": (lambda m, i: np.where(m, i, 0.5), (M, I)),
    "clip": (lambda x: np.clip(x, -0.5, 0.5), (A,)),
    "clip_method": (lambda x: x.clip(-0.5, None), (A,)),
    "clip_arrays": (lambda x, lo: np.clip(x, lo, 1.0), (A, V - 1)),
    "dot_mm": (lambda x, y: np.dot(x, y), (A, B.T)),
    "dot_mv": (lambda x, y: np.dot(x, y), (A, V)),
    "dot_vv": (lambda x, y: np.dot(x, y), (V, V)),
    "dot_method": (lambda x, y: x.dot(y), (A, V)),
    "dot_scalar": (lambda x: np.dot(x, 2.0), (A,)),
    "matmul_batched": (lambda x, y: np.matmul(x, y), (X3, rand(5, 2))),
    "matmul_broadcast": (lambda x, y: np.matmul(x, y), (X3, rand(1, 5, 2))),
    "matmul_int": (lambda x, y: x @ y, (I, J.T)),
    "outer": (lambda x, y: np.outer(x, y), (V, A[0])),
    "tensordot": (lambda x, y: np.tensordot(x, y, axes=([1, 2], [0, 1])), (X3, rand(4, 5, 2))),
    "tensordot_int": (lambda x, y: np.tensordot(x, y, 1), (A, B.T)),
    "einsum_mm": (lambda x, y: np.einsum("ij,jk->ik", x, y), (A, B.T)),
    "einsum_batch": (lambda x, y: np.einsum("bij,bjk->bik", x, y), (X3, rand(3, 5, 2))),
    "einsum_implicit": (lambda x, y: np.einsum("ij,kj", x, y), (A, B)),
    "einsum_three": (lambda x, y, z: np.einsum("ij,jk,k->i", x, y, z), (A, B.T, rand(3))),
    "transpose": (lambda x: np.transpose(x), (X3,)),
    "transpose_axes": (lambda x: np.transpose(x, (1, 0, 2)), (X3,)),
    "transpose_method": (lambda x: x.transpose(2, 0, 1), (X3,)),
    "T": (lambda x: x.T, (X3,)),
    "swapaxes": (lambda x: np.swapaxes(x, 0, -1), (X3,)),
    "swapaxes_method": (lambda x: x.swapaxes(1, 2), (X3,)),
    "moveaxis": (lambda x: np.moveaxis(x, 0, -1), (X3,)),
    "moveaxis_many": (lambda x: np.moveaxis(x, [0, 1], [2, 0]), (X3,)),
    "reshape": (lambda x: np.reshape(x, (4, 15)), (X3,)),
    "reshape_neg": (lambda x: x.reshape(-1, 5), (X3,)),
    "reshape_args": (lambda x: x.reshape(3, 20), (X3,)),
    "reshape_shape": (lambda x: x.reshape(x.shape[0], -1), (X3,)),
    "ravel": (lambda x: np.ravel(x), (X3,)),
    "ravel_method": (lambda x: x.T.ravel(), (X3,)),
    "flatten": (lambda x: x.flatten(), (A,)),
    "expand_dims": (lambda x: np.expand_dims(x, 1), (A,)),
    "expand_dims_many": (lambda x: np.expand_dims(x, (0, -1)), (A,)),
    "squeeze": (lambda x: np.squeeze(x), (rand(3, 1, 4, 1),)),
    "squeeze_axis": (lambda x: x.squeeze(axis=1), (rand(3, 1, 4, 1),)),
    "broadcast_to": (lambda x: np.broadcast_to(x, (3, 4)), (V,)),
    "concatenate": (lambda x, y: np.concatenate([x, y]), (A, B)),
    "concatenate_axis": (lambda x, y: np.concatenate((x, y), axis=1), (A, B)),
    "concatenate_dtypes": (lambda x, y: np.concatenate([x, y], axis=-1), (I, A)),
    "concatenate_none": (lambda x, y: np.concatenate([x, y], axis=None), (A, V)),
    "stack": (lambda x, y: np.stack([x, y]), (A, B)),
    "stack_axis": (lambda x, y: np.stack([x, y], axis=-1), (A, B)),
    "zeros_like": (lambda x: np.zeros_like(x), (A,)),
    "ones_like": (lambda x: np.ones_like(x, dtype=np.int32), (A,)),
    "full_like": (lambda x: np.full_like(x, 7), (I,)),
    "full_like_float": (lambda x: np.full_like(x, 2.5, dtype=np.float32), (A,)),
    "astype": (lambda x: x.astype(np.int32), (A * 10,)),
    "astype_bool": (lambda x: x.astype(bool), (I,)),
    "astype_f32": (lambda x: x.astype(np.float32), (I,)),
    "copy": (lambda x: x.copy(), (A,)),
    "np_copy": (lambda x: np.copy(x) + 1, (A,)),
}


@pytest.mark.parametrize("chunk", range(4))
def test_array_functions(chunk):
    names = sorted(FUNCTIONS)[chunk::4]  # a few functions per compile: the names say which one differs
    cases = {name: (lambda every, name=name: FUNCTIONS[name][0](*every[name])) for name in names}
    check_many(cases, {name: FUNCTIONS[name][1] for name in names})


def test_attributes():
    @tj.jit
    def f(x):
        assert x.ndim == 3
        assert x.dtype == np.float32
        return x * x.shape[0] + x.size + x.shape[-1]

    x = rand(3, 4, 5, dtype=np.float32)
    expected = x * 3 + x.size + 5
    got = f(x)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.float32
    assert_same(f(np.ones((6, 1, 2), np.float32)), np.ones((6, 1, 2), np.float32) * 6 + 12 + 2)
    g = tj.jit(lambda x: x.shape[0] * x - x.shape[1])
    assert_same(g(np.ones((3, 2), np.float32)), np.full((3, 2), 1.0, np.float32))


# ------------------------------------------------------------------------------------------------ indexing
Y = np.arange(60.0).reshape(3, 4, 5)
INDEXES = {
    "int": lambda x: x[1],
    "neg_int": lambda x: x[-1],
    "ints": lambda x: x[1, -2, 3],
    "slice": lambda x: x[1:3],
    "slice_step": lambda x: x[:, ::2],
    "neg_step": lambda x: x[::-1],
    "neg_step_bounds": lambda x: x[:, 3:0:-2],
    "neg_step_neg_bounds": lambda x: x[..., -1:-4:-1],
    "neg_start_only": lambda x: x[-2:],
    "empty_slice": lambda x: x[2:1],
    "past_end": lambda x: x[:, 2:100],
    "none": lambda x: x[None],
    "none_middle": lambda x: x[:, None, 1],
    "ellipsis": lambda x: x[..., 0],
    "ellipsis_mid": lambda x: x[1, ..., ::-1],
    "ellipsis_none": lambda x: x[..., None],
    "gather": lambda x: x[np.array([2, 0, 1, 0])],
    "gather_neg": lambda x: x[np.array([-1, 0])],
    "gather_axis1": lambda x: x[:, np.array([3, 1])],
    "gather_2d": lambda x: x[np.array([[0, 1], [2, 2]])],
    "gather_list": lambda x: x[[1, 0]],
    "gather_after_int": lambda x: x[1, np.array([0, 3])],
    "gather_int32": lambda x: x[:, :, np.array([4, 0], np.int32)],
    "mixed": lambda x: x[1:, None, ::-2, -1],
}


def test_indexing():
    check_many(INDEXES, Y)


def test_indexing_with_traced_integer_array():
    f = tj.jit(lambda x, idx: x[idx] * 2)
    idx = np.array([3, 0, 2])
    x = rand(5, 2)
    assert_same(f(x, idx), x[idx] * 2)
    x, idx = rand(9, 2), np.array([8, -9, 0])
    assert_same(f(x, idx), x[idx] * 2)
    assert f.cache_info().misses == 1


def test_indexing_with_traced_index_array_matches_numpy():
    f = tj.jit(lambda x, idx: x[:, idx])
    x, idx = rand(3, 7), np.array([[6, -7], [0, 3]])
    assert_same(f(x, idx), x[:, idx])


def test_index_symbolic_length():
    f = tj.jit(lambda x: x[-1] + x[0] + x[1:-1].sum(axis=0))
    for n in (2, 3, 9):
        x = rand(n, 3)
        assert_same(f(x), x[-1] + x[0] + x[1:-1].sum(axis=0))
    assert f.cache_info().misses == 1


SLICES = [slice(None, None, -1), slice(1, None, -2), slice(-2, 0, -1), slice(None, -3, -3), slice(5, 2, -1),
          slice(0, None, 3), slice(-100, 100, 2), slice(3, None), slice(None, -2)]


def test_slices_on_symbolic_lengths():
    f = tj.jit(lambda x: tuple(x[k] for k in SLICES))
    for n in (2, 5, 6, 11):
        x = np.arange(float(n))
        for k, got in zip(SLICES, f(x)):
            assert_same(got, x[k], err_msg=f"n={n} key={k}")
    assert f.cache_info().misses == 1


# ------------------------------------------------------------------------------------------------ packaging
def test_ci_runs_exactly_the_readme_test_command():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text().splitlines()
    fence = readme.index("```bash")
    install_and_tour, install_and_test = readme[fence + 1], readme[fence + 2]
    assert install_and_tour.startswith("pip install . && python -m tracejit")
    ci = [ln for ln in (root / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert "set -euo pipefail" in ci
    assert ci[-1] == install_and_test


def test_result_type_with_tracers_follows_numpy():
    """np.result_type(tracer, float) crashed inside tracejit (issue 12); scipy and user code call it to pick a
    dtype. A traced array counts like a 0-d array of its dtype; a Python type like ``float`` is float64."""
    seen = []

    def f(x):
        seen.append((np.result_type(x, float), np.result_type(x, 1.0), np.result_type(x, 2), np.result_type(x, np.int64),
                     np.result_type(x, x * 2.0)))
        return x * np.result_type(x, float).type(2)
    x32 = np.ones(3, np.float32)
    out = tj.jit(f)(x32)
    want = (np.result_type(np.empty((), np.float32), float), np.float32, np.float32, np.float64, np.float32)
    assert seen[-1] == tuple(np.dtype(w) for w in want)
    assert out.dtype == np.float64 and np.all(out == 2)
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(np.reshape(x, (-1,), order=None) ** 2))(np.ones((2, 2))),
                               2 * np.ones((2, 2)))
