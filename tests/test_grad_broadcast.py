"""Gradients through broadcasting, proven on every combination (issue 12).

A 0-d value broadcast through ``add``/``subtract`` and then reduced once lost its element count in the gradient
(``grad(lambda t: np.sum(t - x))(1.3)`` gave 1.0, not x.size). The tests here draw, for every primitive with a VJP
and every reduction, operand shapes from all broadcasting combinations (0-d arrays, Python and numpy scalars,
``(1,)``, size-1 dims anywhere, rank differences, lengths 0 and 1), float32 and float64, and compare ``tj.grad``
(eager and jitted) with ``jax.grad`` (x64) and central differences. The losses reduce the broadcast result
directly (no weighting multiply that would materialize it), which is the form that hid the bug.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tracejit as tj
from tracejit import tensor as T

from test_autodiff import numeric_grad

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------------ the bug itself
@pytest.mark.parametrize("t", [np.array(1.3), 1.3, np.float64(1.3), np.array([1.3]), np.float32(1.3)])
def test_zero_d_broadcast_then_reduced_counts_every_element(t):
    x = np.random.default_rng(0).random((5, 4))
    for fun, want in [(lambda t: np.sum(t - x), 20.0), (lambda t: np.mean(t + x), 1.0),
                      (lambda t: np.sum(x - t), -20.0), (lambda t: np.sum(t + x, axis=0).sum(), 20.0),
                      (lambda t: (t - x).sum(keepdims=True).sum(), 20.0), (lambda t: np.max(t + 0 * x), 1.0)]:
        for g in (tj.grad(fun), tj.jit(tj.grad(fun))):
            got = g(t)
            assert np.shape(got) == np.shape(t)
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_zero_d_broadcast_through_a_view_and_a_second_use():
    x = np.arange(6.0).reshape(2, 3)
    f = lambda t: np.sum(np.broadcast_to(t, (2, 3)) - x) + np.sum((t + x).T)  # noqa: E731
    assert tj.grad(f)(np.array(0.5)) == 12.0
    assert tj.jit(tj.grad(f))(0.5) == 12.0


def test_theano_grad_of_a_broadcast_scalar():
    s, m = T.dscalar("s"), T.dmatrix("m")
    cost = (s - m).sum() + (m + s).mean()
    f = tj.function([s, m], T.grad(cost, s), on_unused_input="ignore")
    np.testing.assert_allclose(f(1.3, np.ones((5, 4))), 21.0)
    g = tj.function([s, m], T.grad(cost, m), on_unused_input="ignore")
    np.testing.assert_allclose(g(1.3, np.ones((5, 4))), np.full((5, 4), -1 + 1 / 20))


# ------------------------------------------------------------------------------------------------ the generators
# (tracejit/numpy form, jax form, domain of the operands): domains keep every function smooth and finite
UNARY = {
    "identity": (lambda x: x, lambda x: x, "any"), "negative": (np.negative, jnp.negative, "any"),
    "absolute": (np.abs, jnp.abs, "pos"), "square": (np.square, jnp.square, "any"),
    "sqrt": (np.sqrt, jnp.sqrt, "pos"), "cbrt": (np.cbrt, jnp.cbrt, "pos"),
    "reciprocal": (lambda x: 1 / x, lambda x: 1 / x, "pos"), "exp": (np.exp, jnp.exp, "any"),
    "exp2": (np.exp2, jnp.exp2, "any"), "expm1": (np.expm1, jnp.expm1, "any"), "log": (np.log, jnp.log, "pos"),
    "log2": (np.log2, jnp.log2, "pos"), "log10": (np.log10, jnp.log10, "pos"),
    "log1p": (np.log1p, jnp.log1p, "pos"), "sin": (np.sin, jnp.sin, "any"), "cos": (np.cos, jnp.cos, "any"),
    "tan": (np.tan, jnp.tan, "unit"), "arcsin": (np.arcsin, jnp.arcsin, "unit"),
    "arccos": (np.arccos, jnp.arccos, "unit"), "arctan": (np.arctan, jnp.arctan, "any"),
    "sinh": (np.sinh, jnp.sinh, "any"), "cosh": (np.cosh, jnp.cosh, "any"), "tanh": (np.tanh, jnp.tanh, "any"),
    "arcsinh": (np.arcsinh, jnp.arcsinh, "any"), "arccosh": (np.arccosh, jnp.arccosh, "gt1"),
    "arctanh": (np.arctanh, jnp.arctanh, "unit"), "sigmoid": (tj.nn.sigmoid, jax.nn.sigmoid, "any"),
    "softplus": (tj.nn.softplus, jax.nn.softplus, "any"),
    "float_power": (lambda x: x ** 3, lambda x: x ** 3, "any"),
}
BINARY = {
    "add": (np.add, jnp.add), "subtract": (np.subtract, jnp.subtract), "multiply": (np.multiply, jnp.multiply),
    "divide": (np.divide, jnp.divide), "power": (np.power, jnp.power), "arctan2": (np.arctan2, jnp.arctan2),
    "hypot": (np.hypot, jnp.hypot), "logaddexp": (np.logaddexp, jnp.logaddexp),
    "maximum": (np.maximum, jnp.maximum), "minimum": (np.minimum, jnp.minimum), "fmax": (np.fmax, jnp.fmax),
    "fmin": (np.fmin, jnp.fmin), "remainder": (np.remainder, jnp.remainder),
    "where": (lambda a, b: np.where(a > 0.5, a, b), lambda a, b: jnp.where(a > 0.5, a, b)),
}
REDUCTIONS = ["sum", "mean", "max", "min", "prod", "var", "std", "nosum"]
DIMS = [0, 1, 2, 3]
SCALAR_KINDS = ["array", "python", "numpy"]


@st.composite
def broadcast_shapes(draw):
    """Two shapes that broadcast together: a common shape, then each operand keeps a suffix of it with some
    axes set to 1."""
    rank = draw(st.integers(0, 3))
    full = [draw(st.sampled_from(DIMS)) for _ in range(rank)]

    def operand():
        r = draw(st.integers(0, rank))
        return tuple(1 if draw(st.booleans()) else d for d in full[rank - r:])
    return operand(), operand()


def _domain(kind, x):
    """Map uniform values in (0.2, 0.8) into the domain of a function."""
    return {"any": 2.5 * x - 1.25, "pos": x + 0.3, "unit": x - 0.5, "gt1": x + 1.2}[kind]


def _operand(r, shape, dtype, kind, domain):
    x = _domain(domain, r.uniform(0.2, 0.8, shape))
    if shape == () and kind == "python":
        return float(x)
    if shape == () and kind == "numpy":
        return np.dtype(dtype).type(x)
    return np.asarray(x, dtype=dtype)


def _reduce(xp, name, y, axis, keepdims, ddof):
    """The loss: one reduction straight on the broadcast result, then a plain sum of what is left."""
    if name == "nosum":  # the whole result summed by hand-written indexing-free code: (y * 1).sum()
        return xp.sum(y)
    f = getattr(xp, name)
    kw = {"ddof": ddof} if name in ("var", "std") else {}
    return xp.sum(f(y, axis=axis, keepdims=keepdims, **kw))


@st.composite
def reduction(draw, shape):
    size = int(np.prod(shape)) if shape else 1
    names = REDUCTIONS if size else ["sum", "prod", "nosum"]  # no identity / nan on empty
    name = draw(st.sampled_from(names))
    axis = None
    if shape and draw(st.booleans()):
        axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                             unique_by=lambda a: a % len(shape)))
        axis = tuple(axes) if len(axes) > 1 else axes[0]
    keepdims = draw(st.booleans())
    n = size if axis is None else int(np.prod([shape[a] for a in np.atleast_1d(axis)]))
    if name in ("max", "min", "var", "std") and n == 0:
        name = "sum"
    ddof = draw(st.sampled_from([0, 1])) if name in ("var", "std") and n > 1 else 0
    return name, axis, keepdims, ddof


def _jax_arg(a):
    return jnp.asarray(np.asarray(a, dtype=np.float64))


def _central(f, x, h):
    return numeric_grad(f, x, h)


def _compare(fun, jfun, args, dtype, fd=True):
    """tj.grad eager and jitted against jax.grad (x64) and central differences, w.r.t. every argument."""
    n = len(args)
    want = jax.grad(jfun, argnums=tuple(range(n)))(*map(_jax_arg, args))
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for gfun in (tj.grad(fun, argnums=tuple(range(n))), tj.jit(tj.grad(fun, argnums=tuple(range(n))))):
        got = gfun(*args)
        for i, (g, w, a) in enumerate(zip(got, want, args)):
            assert np.shape(g) == np.shape(a), (i, np.shape(g), np.shape(a))
            if isinstance(a, np.ndarray) and a.dtype == np.float32:
                assert np.asarray(g).dtype == np.float32
            scale = 1 + float(np.max(np.abs(w), initial=0))
            np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w), rtol=tol["rtol"],
                                       atol=tol["atol"] * scale, err_msg=f"d/d arg {i}")
    if fd and dtype == np.float64:
        for i in range(n):
            def fi(x, i=i):
                a = list(args)
                a[i] = x if np.ndim(args[i]) else type(args[i])(x) if not isinstance(args[i], np.ndarray) else x
                return fun(*a)
            num = _central(fi, args[i], 1e-6)
            scale = 1 + float(np.max(np.abs(num), initial=0))
            np.testing.assert_allclose(np.asarray(want[i]), num, rtol=1e-5, atol=1e-6 * scale)


def _differentiable(red, y):
    """std of equal values is sqrt at 0, not differentiable there (JAX: nan): use the variance instead."""
    name, axis, keepdims, ddof = red
    if name == "std" and np.min(np.std(np.asarray(y, np.float64), axis=axis, ddof=ddof), initial=1) < 1e-6:
        return "var", axis, keepdims, ddof
    return red


def _binary_case(draw_, shapes, dtype, kinds, name, red, seed):
    r = np.random.default_rng(seed)
    f, jf = BINARY[name]
    a = _operand(r, shapes[0], dtype, kinds[0], "any" if name not in ("power",) else "pos")
    b = _operand(r, shapes[1], dtype, kinds[1], "any")
    if name == "remainder":  # a % b stays away from its jumps: b in (1.45, 2.05), a in (0.2, 0.8)
        a = _operand(r, shapes[0], dtype, kinds[0], "pos") - (0.3 if np.ndim(a) else 0)
        b = _operand(r, shapes[1], dtype, kinds[1], "gt1") + 0.25
    rn, axis, keepdims, ddof = _differentiable(red, f(a, b))
    fun = lambda a, b: _reduce(np, rn, f(a, b), axis, keepdims, ddof)  # noqa: E731
    jfun = lambda a, b: _reduce(jnp, rn, jf(a, b), axis, keepdims, ddof)  # noqa: E731
    _compare(fun, jfun, (a, b), dtype)


@st.composite
def binary_cases(draw):
    shapes = draw(broadcast_shapes())
    out = np.broadcast_shapes(*shapes)
    return (shapes, draw(st.sampled_from([np.float64, np.float32])),
            (draw(st.sampled_from(SCALAR_KINDS)), draw(st.sampled_from(SCALAR_KINDS))),
            draw(st.sampled_from(sorted(BINARY))), draw(reduction(out)), draw(st.integers(0, 2 ** 31 - 1)))


@st.composite
def unary_cases(draw):
    """A unary function of ``a``, then broadcast against ``b`` by an add (the form of the original bug)."""
    shapes = draw(broadcast_shapes())
    out = np.broadcast_shapes(*shapes)
    return (shapes, draw(st.sampled_from([np.float64, np.float32])),
            (draw(st.sampled_from(SCALAR_KINDS)), draw(st.sampled_from(SCALAR_KINDS))),
            draw(st.sampled_from(sorted(UNARY))), draw(st.sampled_from(["add", "subtract", "multiply"])),
            draw(reduction(out)), draw(st.integers(0, 2 ** 31 - 1)))


def _unary_case(shapes, dtype, kinds, name, join, red, seed):
    r = np.random.default_rng(seed)
    f, jf, dom = UNARY[name]
    a = _operand(r, shapes[0], dtype, kinds[0], dom)
    b = _operand(r, shapes[1], dtype, kinds[1], "any")
    g, jg = BINARY[join]
    rn, axis, keepdims, ddof = _differentiable(red, g(f(a), b))
    fun = lambda a, b: _reduce(np, rn, g(f(a), b), axis, keepdims, ddof)  # noqa: E731
    jfun = lambda a, b: _reduce(jnp, rn, jg(jf(a), b), axis, keepdims, ddof)  # noqa: E731
    _compare(fun, jfun, (a, b), dtype)


@FAST
@given(binary_cases())
def test_binary_primitives_under_every_broadcast(case):
    _binary_case(None, *case)


@FAST
@given(unary_cases())
def test_unary_primitives_then_broadcast(case):
    _unary_case(*case)


@pytest.mark.slow
@SLOW
@given(binary_cases())
def test_binary_primitives_under_every_broadcast_long(case):
    _binary_case(None, *case)


@pytest.mark.slow
@SLOW
@given(unary_cases())
def test_unary_primitives_then_broadcast_long(case):
    _unary_case(*case)


# ------------------------------------------------------------------------------------------------ random graphs
# Values of a program broadcast to the shape of input ``c`` (3, 4); every step keeps that property, so any value
# can meet any other. Inputs can be used several times and through views.
IDX = np.array([0, 0, 3, 1])
MIX = np.linspace(-1, 1, 16).reshape(4, 4)


GRAPH_UNARY = {
    "tanh": lambda x, c: np.tanh(x), "sin": lambda x, c: np.sin(x), "sq": lambda x, c: x * x,
    "softplus": lambda x, c: np.logaddexp(0.0, x), "sqrt1p": lambda x, c: np.sqrt(1 + x * x),
    "rev": lambda x, c: np.broadcast_to(x, c.shape)[..., ::-1],
    "step2": lambda x, c: np.concatenate([np.broadcast_to(x, c.shape)[:, ::2], np.broadcast_to(x, c.shape)[:, 1::2]],
                                         axis=1),
    "rows": lambda x, c: np.concatenate([np.broadcast_to(x, c.shape)[1:], np.broadcast_to(x, c.shape)[:1]], axis=0),
    "T": lambda x, c: (np.broadcast_to(x, c.shape).T * 1.5).T,
    "flat": lambda x, c: np.broadcast_to(x, c.shape).reshape(-1).reshape(c.shape) * 0.5,
    "gather": lambda x, c: np.broadcast_to(x, c.shape)[:, IDX],
    "mm": lambda x, c: np.broadcast_to(x, c.shape) @ MIX,
    "mmT": lambda x, c: (MIX @ np.broadcast_to(x, c.shape).T).T,
    "sum0": lambda x, c: np.sum(x, axis=0, keepdims=True) if np.ndim(x) == 2 else x * 2,
    "mean1": lambda x, c: np.mean(x, axis=-1, keepdims=True) if np.ndim(x) else x,
    "var": lambda x, c: np.var(np.broadcast_to(x, c.shape), axis=0, ddof=1) + x,
    "max": lambda x, c: np.max(x + c, axis=-1, keepdims=True),
    "total": lambda x, c: np.sum(x) + x,
}
GRAPH_BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (1.5 + b * b), "where": lambda a, b: np.where(a > b, a * b, a - b),
    "max": lambda a, b: np.maximum(a, b * 0.9), "hyp": lambda a, b: np.hypot(a, 1 + b),
}


@st.composite
def graph_programs(draw):
    """Three inputs (the third, ``c``, always (3, 4)); steps refer to earlier values by index, often the same
    one twice."""
    shapes = [draw(st.sampled_from([(3, 4), (4,), (3, 1), (1, 4), (), (1, 1)])) for _ in range(2)] + [(3, 4)]
    kinds = [draw(st.sampled_from(SCALAR_KINDS)) for _ in range(2)]
    steps = []
    for n in range(3, 3 + draw(st.integers(1, 6))):
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(sorted(GRAPH_UNARY))), draw(st.integers(0, n - 1))))
        else:
            i = draw(st.integers(0, n - 1))
            j = draw(st.one_of(st.just(i), st.integers(0, n - 1)))
            steps.append(("b", draw(st.sampled_from(sorted(GRAPH_BINARY))), i, j))
    return shapes, kinds, steps, draw(st.integers(0, 2 ** 31 - 1))


def _run_graph(steps, a, b, c):
    vals = [a, b, c]
    for s in steps:
        if s[0] == "u":
            vals.append(GRAPH_UNARY[s[1]](vals[s[2]], c))
        else:
            vals.append(GRAPH_BINARY[s[1]](vals[s[2]], vals[s[3]]))
    return np.sum(vals[-1]) + 0.25 * np.sum(vals[3:][0] if len(vals) > 4 else c)


def _graph_case(program):
    shapes, kinds, steps, seed = program
    r = np.random.default_rng(seed)
    a, b = (_operand(r, s, np.float64, k, "any") for s, k in zip(shapes, kinds))
    c = _operand(r, (3, 4), np.float64, "array", "any")
    fun = lambda a, b, c: _run_graph(steps, a, b, c)  # noqa: E731
    want = [_central(lambda x, i=i: fun(*[x if j == i else v for j, v in enumerate((a, b, c))]), v, 1e-6)
            for i, v in enumerate((a, b, c))]
    for gfun in (tj.grad(fun, argnums=(0, 1, 2)), tj.jit(tj.grad(fun, argnums=(0, 1, 2)))):
        for g, w, x in zip(gfun(a, b, c), want, (a, b, c)):
            assert np.shape(g) == np.shape(x)
            scale = 1 + float(np.max(np.abs(w), initial=0))
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6 * scale)


@FAST
@given(graph_programs())
def test_random_graphs_with_views_and_reuse_against_finite_differences(program):
    _graph_case(program)


@pytest.mark.slow
@SLOW
@given(graph_programs())
def test_random_graphs_with_views_and_reuse_long(program):
    _graph_case(program)


# ------------------------------------------------------------------------------------------------ Theano's T.grad
THEANO_TYPES = {0: T.dscalar, 1: T.dvector, 2: T.dmatrix}


@st.composite
def theano_cases(draw):
    ranks = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    out_shape = (3, 4)[2 - max(ranks):]
    return (ranks, draw(st.sampled_from(sorted(BINARY))), draw(reduction(out_shape)),
            draw(st.integers(0, 2 ** 31 - 1)))


def _theano_case(ranks, name, red, seed):
    """The same check through Theano's entry point: symbolic variables, T.grad, tj.function."""
    r = np.random.default_rng(seed)
    shapes = [(3, 4)[2 - k:] for k in ranks]
    f, jf = BINARY[name]
    a = _operand(r, shapes[0], np.float64, "array", "pos" if name in ("power", "remainder") else "any")
    b = _operand(r, shapes[1], np.float64, "array", "gt1" if name == "remainder" else "any")
    rn, axis, keepdims, ddof = _differentiable(red, f(a, b))
    sa, sb = THEANO_TYPES[ranks[0]]("a"), THEANO_TYPES[ranks[1]]("b")
    cost = _reduce(np, rn, f(sa, sb), axis, keepdims, ddof)
    fn = tj.function([sa, sb], T.grad(cost, [sa, sb]), on_unused_input="ignore")
    got = fn(a, b)
    want = jax.grad(lambda a, b: _reduce(jnp, rn, jf(a, b), axis, keepdims, ddof), argnums=(0, 1))(
        _jax_arg(a), _jax_arg(b))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-9, atol=1e-11 * (1 + float(np.max(np.abs(w)))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(theano_cases())
def test_theano_grad_under_every_broadcast(case):
    _theano_case(*case)
