"""The call path of ``tj.jit``: the generated per-function ``__call__`` (the fast path) serves a call exactly as the
general path (signature, dict lookup, guards) would: same results, same errors, same cache counts, for every kind
of argument. Speed is measured in benchmarks/, not here."""
import warnings

import numpy as np
import pytest

import tracejit as tj


def general(f, *args, **kwargs):
    """The call through the general path only (what the fast path must agree with)."""
    return tj.Jitted.__call__(f, *args, **kwargs)  # the base class: never the generated path


def fast_path_of(f):
    return getattr(type(f).__call__, "source", None)


def same(a, b):
    if isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k])
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


DTYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]


def _array(shape, dt, seed=0):
    r = np.random.default_rng(seed).standard_normal(shape) * 5
    return np.asarray((r > 0) if dt is np.bool_ else r.astype(dt))


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("shape", [(), (7,), (1,), (3, 4), (1, 5), (4, 1), (2, 3, 2)])
def test_arrays_of_each_dtype_and_rank(dt, shape):
    @tj.jit
    def f(x):
        return x * 2 + 1 if dt is not np.bool_ else x & ~x | x

    x = _array(shape, dt)
    ref = (x * 2 + 1) if dt is not np.bool_ else x
    same(f(x), ref)
    assert fast_path_of(f) is not None
    hits = f.cache_info().hits
    same(f(x), ref)  # the fast path
    assert f.cache_info().hits == hits + 1
    same(general(f, x), ref)
    # another length with the same signature: no new compile
    if shape and shape[0] != 1:
        y = _array((shape[0] + 3,) + shape[1:], dt, seed=1)
        same(f(y), (y * 2 + 1) if dt is not np.bool_ else y)
    assert f.cache_info().misses == 1


def test_a_dtype_or_rank_change_is_a_new_signature():
    @tj.jit
    def f(x):
        return x + 1

    for x in [np.arange(5.0), np.arange(5), np.arange(5.0, dtype=np.float32), np.ones((2, 3)), np.ones((1, 3)),
              np.ones(1), np.float64(3.0), 2.5, 3, True, np.arange(5.0)]:
        same(f(x), np.asarray(x) + 1 if not isinstance(x, (bool, int, float)) else np.add(x, 1))
        same(f(x), general(f, x))
    assert f.cache_info().misses == 10  # the last float64 vector was served by the first entry


def test_non_contiguous_views():
    @tj.jit
    def f(x, y):
        return x - 2 * y

    a = np.arange(24.0).reshape(4, 6)
    for x, y in [(a[:, ::2], a[:, 1::2]), (a.T[:3, :4], a[:3, :4]), (a[::-1], a), (a[:, 1], a[:, 2])]:
        ref = x - 2 * y
        same(f(x, y), ref)
        same(f(x, y), ref)
        same(general(f, x, y), ref)
    # a contiguous call after a strided one with the same rank is its own entry
    same(f(a, a), -a)


@pytest.mark.parametrize("value", [3, -2, 2.5, True, False])
def test_python_scalars(value):
    @tj.jit
    def f(x, s):
        return x * s

    x = np.arange(4.0)
    same(f(x, value), x * value)
    same(f(x, value), x * value)
    same(general(f, x, value), x * value)
    other = {3: 5, -2: 7, 2.5: -1.5, True: False, False: True}[value]
    same(f(x, other), x * other)
    assert f.cache_info().misses == 1  # traced: one compile for every value


def test_int_overflow_of_a_python_scalar_raises_on_both_paths():
    @tj.jit
    def f(x, s):
        return x + s

    x = np.arange(3, dtype=np.int32)
    f(x, 1)
    f(x, 1)
    for call in (f, lambda *a: general(f, *a)):
        with pytest.raises(OverflowError):
            call(x, 2 ** 40)


def test_static_arguments():
    @tj.jit(static_argnums=(1,), static_argnames=("mode",))
    def f(x, k, mode="add"):
        return x + k if mode == "add" else x * k

    x = np.arange(5.0)
    for k in [1, 2, 1, (3,), 2]:
        kk = k[0] if isinstance(k, tuple) else k
        same(f(x, k), x + kk)
        same(f(x, k), general(f, x, k))
    same(f(x, 2, "mul"), x * 2)
    same(f(x, 2, mode="mul"), x * 2)
    same(f(x, 3, "mul"), x * 3)
    # k = 1, 2, (3,); then mode="mul" with k = 2 given by position or by keyword (the same call), and k = 3
    assert f.cache_info().misses == 5
    with pytest.raises(TypeError, match="hashable"):
        f(x, [1])


def test_keyword_arguments_and_defaults():
    @tj.jit
    def f(x, y=None, scale=2.0):
        return x * scale if y is None else (x + y) * scale

    x, y = np.arange(3.0), np.ones(3)
    for _ in range(2):
        same(f(x), x * 2)
        same(f(x, y), (x + y) * 2)
        same(f(x, y=y), (x + y) * 2)
        same(f(x, scale=3.0), x * 3)
        same(f(y=y, x=x, scale=0.5), (x + y) * 0.5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        f(x, z=1)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        f(x, x=x)
    with pytest.raises(TypeError):
        f()


def test_keywords_naming_the_next_parameters_take_the_fast_path():
    f = tj.jit(lambda x, y=1.0, z=None: x + y if z is None else x - z)
    x = np.arange(4.0)
    same(f(x, 2.0), x + 2)
    misses = f.cache_info().misses
    assert "positional" in type(f).__call__.source  # the generated path maps keywords to positions
    for call in (lambda: f(x, y=2.0), lambda: f(y=2.0, x=x), lambda: f(x=x, y=2.0)):
        same(call(), x + 2)
    assert f.cache_info().misses == misses  # one entry serves all spellings
    same(f(x, z=x), x - x)  # a gap (y left to its default): the general path, a new entry
    assert f.cache_info().misses == misses + 1


def test_pytrees():
    @tj.jit
    def f(t, d):
        return {"s": t[0] + d["b"], "l": [t[1] * 2, d["a"]]}

    a, b = np.arange(3.0), np.ones(3)
    for _ in range(3):
        out = f((a, b), {"a": a, "b": b})
        same(out, {"s": a + b, "l": [b * 2, a]})
    same(f((a, b), {"a": a, "b": b}), general(f, (a, b), {"a": a, "b": b}))
    assert f.cache_info().misses == 1


def test_mutated_arguments_on_the_fast_path():
    @tj.jit
    def step(u, v):
        u[1:-1] += 0.5 * (v[:-2] - 2 * v[1:-1] + v[2:])
        v *= 2

    u0, v0 = np.zeros(6), np.arange(6.0) ** 2
    ur, vr = u0.copy(), v0.copy()
    ut, vt = u0.copy(), v0.copy()
    for _ in range(4):
        ur[1:-1] += 0.5 * (vr[:-2] - 2 * vr[1:-1] + vr[2:])
        vr *= 2
        assert step(ut, vt) is None
        np.testing.assert_array_equal(ut, ur)
        np.testing.assert_array_equal(vt, vr)
    # a strided view: the write reaches its base
    base = np.zeros(12)
    w = np.arange(12.0)
    for _ in range(2):
        step(base[::2], w[::2])
    np.testing.assert_array_equal(base[1::2], 0)
    assert step.cache_info().misses == 2


def test_a_failed_run_time_check_leaves_mutated_arguments_untouched():
    @tj.jit
    def f(x, p):
        x += 1
        return x ** p

    x = np.arange(3)
    f(x, np.array([1, 2, 3]))
    f(x, np.array([1, 2, 3]))
    before = x.copy()
    with pytest.raises(ValueError, match="negative"):
        f(x, np.array([1, -1, 2]))
    np.testing.assert_array_equal(x, before)


def test_guarded_specializations():
    @tj.jit
    def f(x, n):
        if x.shape[0] > 3:
            return x[:3] * 2
        out = x.copy()
        for _ in range(n):
            out = out + 1
        return out

    a, b, c = np.arange(5.0), np.arange(2.0), np.arange(8.0)
    for _ in range(2):
        same(f(a, 2), a[:3] * 2)
        same(f(b, 2), b + 2)
        same(f(b, 3), b + 3)
        same(f(c, 9), c[:3] * 2)  # the `> 3` entry serves every length above 3 and every n
        same(general(f, b, 3), b + 3)
    assert f.cache_info().misses == 3


def test_dropped_specializations_are_not_served(monkeypatch):
    monkeypatch.setenv("TRACEJIT_MAX_SPECIALIZATIONS", "2")

    @tj.jit
    def f(x):
        return x * len(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in [2, 3, 4, 2, 3, 4, 5]:
            x = np.arange(float(n))
            same(f(x), x * n)
            same(f(x), x * n)
    assert f.cache_info().size == 2


def test_errors_match_the_general_path():
    @tj.jit
    def f(x, y):
        return x + y

    a, b = np.arange(3.0), np.arange(4.0)
    f(a, a)
    f(a, a)
    with pytest.raises(ValueError) as fast:
        f(a, b)
    with pytest.raises(ValueError) as slow:
        general(f, a, b)
    assert str(fast.value) == str(slow.value)
    with pytest.raises(TypeError, match="complex"):
        f(a, np.ones(3, np.clongdouble))  # complex64/128 are supported (issue 14); complex256 is not
    with pytest.raises(TypeError):
        f(a)
    with pytest.raises(TypeError):
        f(a, a, a)


def test_methods_and_cache_clear():
    class Model:
        def __init__(self, w):
            self.w = w

        @tj.jit(static_argnums=0)
        def apply(self, x):
            return x * 2

    m = Model(3)
    x = np.arange(3.0)
    same(m.apply(x), x * 2)
    same(m.apply(x), x * 2)
    assert Model.apply.cache_info().hits == 1
    Model.apply.cache_clear()
    assert fast_path_of(Model.apply) is None
    same(Model.apply(m, x), x * 2)


def test_a_jitted_function_called_inside_another_trace_is_inlined():
    @tj.jit
    def inner(x):
        return x * 3

    @tj.jit
    def outer(x):
        return inner(x) + 1

    x = np.arange(4.0)
    same(inner(x), x * 3)
    same(inner(x), x * 3)
    same(outer(x), x * 3 + 1)
    g = tj.grad(lambda x: inner(x).sum())
    same(g(x), np.full(4, 3.0))


# ------------------------------------------------------------------------------------------------ equal lengths
def test_lengths_the_checks_force_equal_are_one_symbol():
    def f(x, y):
        return x + y - x

    x, y = np.ones((3, 4)), np.arange(12.0).reshape(3, 4)
    traced = tj.make_ir(f, optimize=False)(x, y)
    assert traced.inputs[0].shape == traced.inputs[1].shape
    opt = tj.make_ir(f)(x, y)
    assert opt.eqns == [] and opt.outputs[0] is opt.inputs[1]  # y itself, not broadcast_to(y, (n0, n1))
    assert "n0" in str(tj.jit(f).lower(x, y)) and "m0" not in str(tj.jit(f).lower(x, y))


def test_unification_keeps_results_and_does_not_recompile():
    @tj.jit
    def f(x, y, z):
        d = x - y
        return (d * d).sum(axis=1) + z @ np.ones(z.shape[1]), y[::-1] * x

    rng = np.random.default_rng(0)
    for n, k in [(4, 3), (7, 3), (2, 5), (0, 3), (9, 2)]:
        x, y, z = rng.standard_normal((n, k)), rng.standard_normal((n, k)), rng.standard_normal((n, 6))
        d = x - y
        got = f(x, y, z)
        np.testing.assert_allclose(got[0], (d * d).sum(axis=1) + z @ np.ones(6), rtol=1e-12)  # summation order
        same(got[1], y[::-1] * x)
    assert f.cache_info().misses == 1


@pytest.mark.parametrize("shapes", [((3, 4), (3, 5)), ((3, 4), (2, 4)), ((5,), (6,)), ((0,), (2,))])
def test_a_mismatch_still_raises_numpys_error(shapes):
    @tj.jit
    def f(x, y):
        return x * y + x

    f(np.ones((4, 4)[:len(shapes[0])]), np.ones((4, 4)[:len(shapes[0])]))
    a, b = np.ones(shapes[0]), np.ones(shapes[1])
    with pytest.raises(ValueError) as expected:
        a * b
    for _ in range(2):  # the general path, then the generated one
        with pytest.raises(ValueError, match="could not be broadcast") as got:
            f(a, b)
        assert str(got.value).replace(" ", "") == str(expected.value).replace(" ", "")


def test_matmul_core_lengths_are_unified_and_checked():
    @tj.jit
    def f(a, b):
        return a @ b + a.sum()

    a, b = np.arange(6.0).reshape(2, 3), np.ones((3, 4))
    same(f(a, b), a @ b + a.sum())
    same(f(a[:, :2], b[:2]), a[:, :2] @ b[:2] + a[:, :2].sum())
    with pytest.raises(ValueError, match="mismatch in its core dimension"):
        f(a, np.ones((4, 4)))


def test_unification_with_mutated_arguments_and_guards():
    @tj.jit
    def f(u, v):
        u += v
        if u.shape[0] > 2:
            return u * len(v)
        return u

    u, v = np.zeros(4), np.arange(4.0)
    ur = u.copy()
    for _ in range(3):
        ur += v
        same(f(u, v), ur * 4)
        same(u, ur)
    with pytest.raises(ValueError):
        f(u, np.ones(5))
    same(u, ur)


def test_output_pytrees_on_the_fast_path():
    import collections
    P = collections.namedtuple("P", "a b")

    @tj.jit
    def f(x, u):
        u += 1
        return {"z": (x * 1, None, [x * 2]), "p": P(x + 1, x - 1), "e": ()}

    x, u = np.arange(3.0), np.zeros(3)
    for k in range(1, 4):
        out = f(x, u)
        same(out, {"z": (x, None, [x * 2]), "p": P(x + 1, x - 1), "e": ()})
        assert isinstance(out["p"], P) and out["z"][1] is None and list(out) == list(general(f, x, u.copy()))
        same(u, np.full(3, float(k)))  # (the general call above wrote into a copy)

    @tj.jit
    def single(x):
        return [x + 1]

    same(single(x), [x + 1])
    same(single(x), [x + 1])


@pytest.mark.parametrize("warm", [False, True])
def test_one_tracejit_frame_in_a_traceback(warm):
    import os
    import traceback

    @tj.jit
    def f(x, y):
        return x + y

    a = np.arange(3.0)
    if warm:  # the generated path serves the signature; the error is raised by the run-time check
        f(a, a)
    with pytest.raises(ValueError) as e:
        f(a, np.arange(4.0))
    pkg = os.path.dirname(tj.__file__)
    frames = [fr for fr in traceback.extract_tb(e.value.__traceback__) if fr.filename.startswith(pkg)]
    assert len(frames) <= 1


def test_the_optimized_tier_runs_inlined_in_the_call_path():
    @tj.jit
    def f(x):
        return np.exp(x) + 1  # vector math: a tiered executable

    x = np.linspace(0.0, 1.0, 10)
    f.compile(x)  # waits for the optimized tier, which regenerates the call path
    src = fast_path_of(f)
    assert "_entry(" in src and ".run(" not in src
    for _ in range(3):
        same(f(x), np.exp(x) + 1)
        same(general(f, x), np.exp(x) + 1)


def test_calls_served_by_the_generated_path_are_counted():
    f = tj.jit(lambda x: x * 2)
    x = np.ones(5)
    for _ in range(4):
        same(f(x), x * 2)
    assert f.cache_info() == (3, 1, 1)
    f.cache_clear()
    assert f.cache_info() == (0, 0, 0)
    f(x)
    f(x)
    assert f.cache_info() == (1, 1, 1)


def test_one_output_two_outputs_and_an_updated_argument_on_the_inlined_path():
    @tj.jit
    def one(x):
        return x + 1

    @tj.jit
    def two(x):
        return x + 1, {"d": x * 2}

    @tj.jit
    def bump(u, s):
        u += s
        return u.sum()

    x = np.arange(4.0)
    u = np.zeros(4)
    for i in range(3):
        assert type(one(x)) is np.ndarray
        same(one(x), x + 1)
        same(two(x), (x + 1, {"d": x * 2}))
        same(bump(u, 1.5), np.float64(1.5 * 4 * (i + 1)))
        same(u, np.full(4, 1.5 * (i + 1)))
    assert "_entry(" in fast_path_of(bump)
