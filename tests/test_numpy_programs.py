"""Issue 13: real numpy programs under @jit: lengths as Python ints (with guards), in-place writes, masks.

Differential tests against numpy: hypothesis drives index forms and write sequences through views; guard tests
check that a new length retraces only where a guard says so and never returns another specialization's result;
mutation tests check the caller's arrays after the call, element for element.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
from conftest import assert_same

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))


def both(fun, *args):
    """fun under jit and under numpy on copies of args: (jit result, numpy result, jit args, numpy args)."""
    a1 = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    a2 = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    return tj.jit(fun)(*a1), fun(*a2), a1, a2


def same_program(fun, *args):
    r1, r2, a1, a2 = both(fun, *args)
    if r2 is None:
        assert r1 is None
    elif isinstance(r2, tuple):
        assert len(r1) == len(r2)
        for x, y in zip(r1, r2):
            assert_same(x, np.asarray(y))
    else:
        assert_same(r1, r2)
    for x, y in zip(a1, a2):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)  # the caller's arrays as numpy left them


# ------------------------------------------------------------------------------------------------ 1. lengths
def test_computed_lengths_stay_symbolic():
    def f(I):
        m, n = I.shape
        a = I[:m - 1] - I[1:]
        b = I[m // 2 - 1:m // 2 + 1, : n - 1]
        z = np.zeros((m, 2)) + np.ones((m, 1)) + np.full((m, 2), 2.0)
        r = np.arange(m) * 1.0 + np.linspace(0, 1, m)
        e = np.eye(n)
        return a.sum(), b, z, r, e @ I[0]
    f_j = tj.jit(f)
    for shape in [(4, 5), (6, 3), (9, 7)]:
        I = np.random.rand(*shape)
        for got, want in zip(f_j(I), f(I)[:5]):
            assert_same(got, want)
    assert f_j.cache_info().misses == 1  # no guard: one compile for every length


def test_linspace_matches_numpy_on_symbolic_lengths():
    f = tj.jit(lambda x: np.linspace(-1.5, 2.0, x.shape[0]) + 0 * x)
    for n in (0, 2, 3, 17):
        np.testing.assert_allclose(f(np.zeros(n)), np.linspace(-1.5, 2.0, n), rtol=1e-15, atol=1e-15)


def test_len_specializes_with_a_guard_and_results_are_never_another_specializations():
    def f(x):
        n = len(x)
        out = np.zeros(n + 1)
        for i in range(n):
            out[i + 1] = out[i] + x[i]
        return out
    g = tj.jit(f)
    for n in (3, 5, 3, 5, 2):
        x = np.random.rand(n)
        assert_same(g(x), f(x))
    assert g.cache_info().misses == 3 and g.cache_info().size == 3
    assert "# guard: n == 3" in g.lower(np.ones(3)).as_text()


def test_comparison_guards_on_the_outcome_not_the_value():
    def f(x):
        n = x.shape[0]
        if n > 3:
            return x * 2
        return x - 1
    g = tj.jit(f)
    for n in (5, 7, 9, 2, 3, 0, 10):
        x = np.random.rand(n)
        assert_same(g(x), f(x))
    assert g.cache_info().misses == 2


def test_equality_on_a_length_is_never_structural():
    def f(x):
        return x + 1 if x.shape[0] == 4 else x - 1
    g = tj.jit(f)
    for n in (4, 5, 4):
        assert_same(g(np.ones(n)), f(np.ones(n)))


def test_specialization_bound_warns_once_and_keeps_working(monkeypatch):
    monkeypatch.setenv("TRACEJIT_MAX_SPECIALIZATIONS", "2")
    g = tj.jit(lambda x: x * len(x))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for n in (2, 3, 4, 5, 2):
            assert_same(g(np.ones(n)), np.ones(n) * n)
    msgs = [str(m.message) for m in w if "specialized more than" in str(m.message)]
    assert len(msgs) == 1 and "test_numpy_programs.py" in msgs[0]
    assert g.cache_info().size == 2


def test_int_and_bool_arguments_traced_until_python_needs_them():
    scale = tj.jit(lambda x, k: x * k + k // 2)
    for k in (1, 2, 7):
        assert_same(scale(np.ones(3), k), np.ones(3) * k + k // 2)
    assert scale.cache_info().misses == 1  # only computed with: one compile

    def step(x, iters, periodic):
        for _ in range(iters):
            x = x * 0.5 if periodic else x * 0.9
        return x
    g = tj.jit(lambda x, iters, periodic: step(x, iters, False) + (1.0 if periodic else 0.0))
    x = np.random.rand(5)
    for iters, periodic in [(2, True), (3, False), (2, True), (2, False)]:
        assert_same(g(x, iters, periodic), step(x, iters, False) + (1.0 if periodic else 0.0))
    assert g.cache_info().misses == 3
    h = tj.jit(lambda x, d: np.zeros(d + 1) + x[0])
    assert_same(h(np.ones(3), 4), np.ones(5))


def test_int_arguments_as_lengths_of_numpy_constructors():
    """np.arange(n) / np.full(n, v) convert n with np.asarray first: specialized on n like range(n)."""
    def f(n, a):
        return a * n, np.arange(n) * 2, np.full(n, 1.5).sum(), np.linspace(0, 1, n + 1)
    g = tj.jit(f)
    for n in (7, np.int64(3), 7):
        for got, want in zip(g(n, np.ones(2)), f(n, np.ones(2))):
            assert_same(got, want)
    assert g.cache_info().misses == 2
    with pytest.raises(tj.ConcretizationError, match="np.asarray"):  # a value computed from an array's data
        tj.jit(lambda a: np.arange(a.sum().astype(np.int64)))(np.ones(3))


def test_dispatch_with_guards_uses_the_fast_path():
    g = tj.jit(lambda x: x * len(x))
    x = np.ones(4)
    g(x)
    hits = g.cache_info().hits
    for _ in range(3):
        g(x)
    assert g.cache_info().hits == hits + 3 and g.cache_info().misses == 1


# ------------------------------------------------------------------------------------------------ 2. writes
def _key_strategy(shape):
    """numpy index forms on a 2-D array: ints, slices with steps, None, ..., one integer array, a mask."""
    a, b = shape

    def axis_part(n):
        return st.one_of(
            st.integers(-n, n - 1),
            st.builds(slice, st.none() | st.integers(-n - 1, n + 1), st.none() | st.integers(-n - 1, n + 1),
                      st.sampled_from([None, 1, 2, 3, -1, -2])))
    basic = st.tuples(axis_part(a), axis_part(b))
    with_none = basic.map(lambda k: (k[0], None, k[1]))
    ellipsis = axis_part(b).map(lambda k: (Ellipsis, k))
    arr = st.tuples(st.lists(st.integers(-a, a - 1), min_size=1, max_size=5).map(np.array), axis_part(b))
    arr2 = st.tuples(axis_part(a), st.lists(st.integers(-b, b - 1), min_size=1, max_size=5).map(np.array))
    return st.one_of(basic, with_none, ellipsis, arr, arr2)


@st.composite
def write_case(draw):
    shape = (draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    key = draw(_key_strategy(shape))
    target = np.empty(shape)[key].shape
    scalar = draw(st.booleans())
    v = 7.5 if scalar else np.arange(1.0, 1.0 + int(np.prod(target))).reshape(target)
    return shape, key, v, draw(st.sampled_from(["=", "+=", "*="]))


@settings(max_examples=30)
@given(write_case())
def test_writes_match_numpy_on_arguments_and_fresh_arrays(case):
    shape, key, v, op = case

    def write(x, v):
        if op == "=":
            x[key] = v
        elif op == "+=":
            x[key] += v
        else:
            x[key] *= v

    def on_argument(x, v):
        write(x, v)

    def on_fresh(x, v):
        y = x * 1.0
        write(y, v)
        return y
    x = np.arange(float(np.prod(shape))).reshape(shape)
    same_program(on_argument, x, v)
    same_program(on_fresh, x, v)


@settings(max_examples=20)
@given(st.integers(3, 7), st.lists(st.tuples(st.sampled_from(["view", "base", "row", "read"]), st.integers(0, 2)),
                                   min_size=1, max_size=5))
def test_write_sequences_through_views(n, steps):
    def prog(U):
        u = U[1:-1, 1:-1]
        acc = 0.0
        for kind, i in steps:
            if kind == "view":
                u += i + 1
            elif kind == "base":
                U[i] = -U[i] * 2
            elif kind == "row":
                row = U[i]
                row[::2] = acc
            else:
                acc = acc + u.sum() + U[:, i].sum()
        return u.copy(), acc
    same_program(prog, np.arange(float(n * n)).reshape(n, n))


def test_stencil_returning_none_mutates_its_argument():
    def stencil(u, v):
        u[1:-1, 1:-1] = 0.25 * (v[:-2, 1:-1] + v[2:, 1:-1] + v[1:-1, :-2] + v[1:-1, 2:])
    for shape in [(5, 6), (8, 3)]:
        same_program(stencil, np.random.rand(*shape), np.random.rand(*shape))


def test_view_writes_reach_the_base_and_transposes():
    def f(A):
        A.T[0] = -1.0
        r = A[1]
        r[:] = 0
        return A.sum()
    same_program(f, np.random.rand(4, 3))


def test_out_copyto_fill_add_at():
    def f(x, idx):
        out = np.empty_like(x)
        np.add(x, 1, out=out)
        np.multiply(out, 2, out=out)
        y = np.zeros(x.shape[0])
        np.copyto(y, x)
        z = np.empty(3)
        z.fill(4.0)
        np.add.at(y, idx, 1.0)
        np.subtract.at(y, idx, np.ones(idx.shape[0]) * 0.5)
        s = np.zeros(())
        np.sum(x, out=s)
        return out, y, z, s
    same_program(f, np.random.rand(6), np.array([0, 2, 2, -1, 2]))


def test_repeated_integer_indices_last_write_wins():
    def f(x, idx, v):
        x[idx] = v
        y = x.copy()
        y[idx] += 1.0
        return y
    same_program(f, np.zeros(5), np.array([1, 3, 1, 1, -1]), np.arange(5.0))


def test_integer_array_write_out_of_bounds_raises():
    def f(x, idx):
        x[idx] = 1.0
    with pytest.raises(IndexError):
        tj.jit(f)(np.zeros(3), np.array([0, 5]))


def test_in_place_cast_follows_numpy_same_kind():
    def f(x):
        x += 1.5
    with pytest.raises(TypeError, match="same_kind"):
        tj.jit(f)(np.zeros(3, np.int64))

    def g(x):
        x[0] = 2.7  # setitem casts unsafely, as numpy
        return x
    same_program(g, np.zeros(3, np.int64))


# ------------------------------------------------------------------------------------------------ 3. masks
def test_mask_writes():
    def f(d, L, z):
        d[d > L / 2] -= L
        d[d < -L / 2] += L
        z[z < 0] = 0
        m = z > 0.5
        z[m] = d[m] * 2 + 1
        return d.sum()
    same_program(f, np.random.rand(5, 3) * 4 - 2, 2.0, np.random.rand(5, 3) - 0.3)


def test_mask_read_is_the_selection():
    # formerly a refusal naming the line: x[mask] now has a data-dependent length (tests/test_data_dependent.py)
    def f(x):
        return x[x > 0].sum()  # MASK LINE
    x = np.array([1.0, -2.0, 3.0])
    assert tj.jit(f)(x) == f(x)


# ------------------------------------------------------------------------------------------------ 4. errors
def test_writing_through_a_reshape_makes_the_base_unreadable_not_stale():
    def f(x):
        r = x.reshape(-1)
        r[0] = 5.0
        return x
    with pytest.raises(tj.errors.UnsupportedError, match="view"):
        tj.jit(f)(np.ones((2, 2)))


def test_control_flow_on_values_still_names_the_way_out():
    def f(x):
        if x.sum() > 0:
            return x
        return -x
    with pytest.raises(tj.ConcretizationError, match="np.where"):
        tj.jit(f)(np.ones(3))


def test_gradient_through_writes():
    def f(x):
        y = np.zeros(x.shape[0] + 1)
        y[1:] = x ** 2
        y[0] = x[0]
        y[::2] *= 3
        return (y * y).sum()
    x = np.random.rand(5)
    g = tj.grad(f)(x)
    eps = 1e-6
    num = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------------ examples
def test_examples_match_numpy():
    import numpy_programs as ex
    for name, (fun, make) in ex.PROGRAMS.items():
        for n in (16, 23):
            args = make(n, np.random.default_rng(n))
            same_program(fun, *args)


def test_write_at_a_traced_scalar_index_in_and_out_of_loops():
    def put(b, i, y):
        b = b.copy()
        b[i] = y
        b[:, i] = -1.0
        return b
    b = np.arange(12.0).reshape(3, 4)
    for i in (0, 2, -1):
        np.testing.assert_array_equal(tj.jit(put)(b, np.int64(i), np.arange(4.0)), put(b, i, np.arange(4.0)))
    with pytest.raises(IndexError, match="out of bounds"):
        tj.jit(put)(b, np.int64(3), np.arange(4.0))

    def doubling(m):  # out[i] = v inside a while loop, stopping on the data
        def body(c):
            i, _, p, out = c
            out[i] = p * 2
            return i + 1, p * 2 > m, p * 2, out
        i, _, _, out = tj.while_loop(lambda c: (c[0] < 8) & ~c[1], body,
                                     (np.int64(0), np.bool_(False), np.float64(1.0), np.zeros(8)))
        return i, out
    i, out = tj.jit(doubling)(45.0)
    assert i == 6
    np.testing.assert_array_equal(out, [2., 4., 8., 16., 32., 64., 0., 0.])


@st.composite
def advanced_key(draw):
    """Keys on a (3, 4, 5) array with at least two advanced entries (integer arrays, ints, lists) among slices
    and None: adjacent or not, broadcasting against each other, negative and repeated positions."""
    shape = (3, 4, 5)
    entries, n_adv = [], 0
    for n in shape:
        kind = draw(st.sampled_from(["array", "array", "int", "slice", "none_then_array"]))
        if kind == "slice":
            entries.append(slice(draw(st.integers(0, 1)), None, draw(st.sampled_from([1, 2, -1]))))
            continue
        if kind == "int":
            entries.append(draw(st.integers(-n, n - 1)))
        else:
            if kind == "none_then_array":
                entries.append(None)
            idx_shape = draw(st.sampled_from([(2,), (1,), (2, 1), (1, 2), (3,)]))
            idx = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(idx_shape)),
                                         max_size=int(np.prod(idx_shape))))).reshape(idx_shape)
            entries.append(idx.tolist() if draw(st.booleans()) and idx.ndim == 1 else idx)
        n_adv += 1
    arrays = [e for e in entries if isinstance(e, (np.ndarray, list))]
    if n_adv < 2 or not arrays:
        entries = [np.array([0, -1]), np.array([[1], [2]]), slice(None)]
    x = np.zeros(shape)
    try:
        x[tuple(entries)]
    except IndexError:  # index shapes that do not broadcast: numpy refuses the key; so do we (checked below)
        entries = [np.array([2, 0]), slice(None), np.array([4, -5])]
    return tuple(entries)


@settings(max_examples=40, deadline=None)
@given(advanced_key())
def test_several_index_arrays_read_and_write_as_numpy(key):
    x = np.arange(60.0).reshape(3, 4, 5)
    assert_same(tj.jit(lambda x: x[key])(x), x[key])

    def write(x):
        y = x.copy()
        t = y[key]
        y[key] = -np.arange(t.size, dtype=float).reshape(t.shape) - 1
        return y
    assert_same(tj.jit(write)(x), write(x))


def test_several_index_arrays_gradient_errors_and_cross_entropy():
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def ce(logits, labels, xp):
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        return -logp[xp.arange(len(labels)), labels].mean()
    logits, labels = np.random.default_rng(0).standard_normal((6, 5)), np.array([0, 2, 4, 1, 1, -1])
    np.testing.assert_allclose(tj.jit(lambda a, b: ce(a, b, np))(logits, labels), ce(logits, labels, np))
    np.testing.assert_allclose(tj.grad(lambda a: ce(a, labels, np))(logits),
                               jax.grad(lambda a: ce(a, labels, jnp))(logits), rtol=1e-12)
    x = np.arange(12.0).reshape(3, 4)
    with pytest.raises(IndexError, match="out of bounds for axis 1"):
        tj.jit(lambda x, j: x[np.arange(3), j])(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 1"):
        tj.jit(lambda x: x[[0, 1], 5])(x)
    with pytest.raises(ValueError, match="broadcast"):
        tj.jit(lambda x: x[[0, 1], [0, 1, 2]])(x)
