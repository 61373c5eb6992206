"""Arguments a jitted function writes into: the kernels store the new values into the caller's array where no step
reads an old value after it is overwritten (lower/inplace.py), and the caller's arrays after the call equal
numpy's, element for element, also when arguments share memory."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tracejit as tj
from tracejit.lower.plan import BufferKind, CopyStep, Kernel


def executable_of(f):
    (entry,) = [e for es in f._specs.values() for e in es]
    return entry.exe


def heat_step(u, alpha):
    u[1:-1, 1:-1] += alpha * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * u[1:-1, 1:-1])


def test_a_stencil_updates_its_argument_with_no_copy_back():
    f = tj.jit(heat_step)
    rng = np.random.default_rng(0)
    u = rng.random((9, 7))
    ref = u.copy()
    for _ in range(3):
        assert f(u, 0.1) is None
        heat_step(ref, 0.1)
        np.testing.assert_allclose(u, ref, rtol=1e-14)
    exe = executable_of(f)
    plan, memory = exe.plan, exe.memory
    (arg,) = [b.id for b in plan.buffers if b.kind is BufferKind.INPUT and b.input_index == 0]
    (out,) = plan.outputs
    assert memory.in_arguments == {0: out} and memory.slot_of[out] == arg
    # the new interior is computed into a temporary (it reads neighbours the write would overwrite) and copied
    # into the argument once; the unchanged border is neither copied nor copied back
    copies = [s for s in plan.steps if isinstance(s, CopyStep)]
    assert len(copies) == 1 and copies[0].dst.shape != plan.buffers[arg].shape
    assert "return [a0]" in exe.driver_source
    w = rng.random((6, 5))
    assert exe.run([w, np.asarray(0.1)])[0] is w  # the caller's own array: nothing to copy back


def test_an_elementwise_update_is_one_kernel_writing_the_argument():
    @tj.jit
    def f(u, v):
        u *= 2
        u += v

    u, v = np.arange(6.0), np.ones(6)
    f(u, v)
    np.testing.assert_array_equal(u, np.arange(6.0) * 2 + 1)
    plan = executable_of(f).plan
    assert [type(s) for s in plan.steps] == [Kernel]
    assert all(b.kind is not BufferKind.OUTPUT or executable_of(f).memory.slot_of.get(b.id) is not None
               for b in plan.buffers)


def _set_one(out, v):
    out[2] = v


def _add_out(a, b, c):
    np.add(a, b, out=c)


def _strided_zero(u):
    u[::2] = 0


def _shift_right(u):
    u[1:] = u[:-1]


def _shift_left(u):
    u[:-1] = u[1:]


def _reverse(u):
    u[...] = u[::-1]


def _center(u):
    u -= u.mean()


def _rows(u):
    u /= u.sum(axis=1, keepdims=True)


def _running(u):
    u[1:] += u[:-1]


def _two(a, b):
    a += 1
    b *= a
    return a.sum() + b.sum()


def _masked(u):
    u[u > 0.5] -= 1.0


def _returns_it(u):
    u += 1
    return u


CASES = [
    (_set_one, lambda r: (r.random(5), 7.0)),
    (_add_out, lambda r: (r.random(5), r.random(5), np.zeros(5))),
    (_strided_zero, lambda r: (r.random(7),)),
    (_shift_right, lambda r: (r.random(6),)),
    (_shift_left, lambda r: (r.random(6),)),
    (_reverse, lambda r: (r.random(6),)),
    (_center, lambda r: (r.random(8),)),
    (_rows, lambda r: (r.random((3, 4)) + 0.5,)),
    (_running, lambda r: (r.random(6),)),
    (_two, lambda r: (r.random(4), r.random(4))),
    (_masked, lambda r: (r.random((4, 3)),)),
    (_returns_it, lambda r: (np.arange(5, dtype=np.int32),)),
    (heat_step, lambda r: (r.random((6, 8)).astype(np.float32), np.float32(0.2))),
]


@pytest.mark.parametrize("fun,make", CASES, ids=[c[0].__name__ for c in CASES])
def test_the_callers_arrays_equal_numpys(fun, make):
    f = tj.jit(fun)
    rng = np.random.default_rng(1)
    for _ in range(3):  # the general path, then the generated call path
        args = make(rng)
        mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        expected = fun(*args)
        got = f(*mine)
        if expected is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-6)
        for a, m in zip(args, mine):
            if isinstance(a, np.ndarray):
                assert m.dtype == a.dtype
                np.testing.assert_allclose(m, a, rtol=1e-6)


def test_an_updated_argument_that_is_returned_is_the_callers_array():
    f = tj.jit(_returns_it)
    u = np.arange(5.0)
    for _ in range(2):
        assert f(u) is u
    np.testing.assert_array_equal(u, np.arange(5.0) + 2)


def test_the_same_array_twice_is_one_array_as_in_numpy():
    @tj.jit
    def f(x, y):
        x += 1
        return y * 2  # numpy: y is x, so it sees the write

    @tj.jit
    def g(x, y):
        x += y[::-1]

    for _ in range(3):
        a, b = np.arange(4.0), np.arange(4.0)
        np.testing.assert_array_equal(f(a, a), (np.arange(4.0) + 1) * 2)
        np.testing.assert_array_equal(a, np.arange(4.0) + 1)
        np.testing.assert_array_equal(f(a, b), np.arange(4.0) * 2)  # distinct arrays: y keeps its values
        a = np.arange(4.0)
        g(a, a)
        np.testing.assert_array_equal(a, np.arange(4.0) + np.arange(4.0)[::-1])
    assert f.cache_info().misses == 2 and g.cache_info().misses == 1


@pytest.mark.parametrize("n", [6, 700 * 400])  # one call of the entry; the steps split across threads
def test_overlapping_views_fall_back_to_a_private_copy(n):
    @tj.jit
    def f(x, y):
        x += y  # numpy buffers overlapping operands: x_new = x_old + y_old

    for _ in range(3):
        base = np.arange(n + 1.0)
        ref = base.copy()
        np.add(ref[1:], ref[:-1], out=ref[1:])
        f(base[1:], base[:-1])
        np.testing.assert_array_equal(base, ref)
        base = np.arange(n + 1.0)
        f(base[1:], base[1:].copy())
        np.testing.assert_array_equal(base[1:], 2 * np.arange(1.0, n + 1))
        assert base[0] == 0
    assert executable_of(f).memory.in_arguments == {0: executable_of(f).plan.outputs[0]}


def test_a_gather_that_may_raise_keeps_the_copy():
    @tj.jit
    def f(u, i):
        u += u[i].sum()

    u = np.arange(4.0)
    with pytest.raises(IndexError):
        f(u, np.array([0, 9]))
    np.testing.assert_array_equal(u, np.arange(4.0))


# a menu of writes into the arguments u (n,) and v (n,): a random sequence of them, traced, must leave u and v as
# numpy does (each write's old values read or not, in place or through a temporary)
WRITES = [
    lambda u, v: u.__iadd__(1.5),
    lambda u, v: u.__imul__(v),
    lambda u, v: u.__setitem__(slice(1, None), u[:-1]),
    lambda u, v: u.__setitem__(slice(None, -1), u[1:] * 2),
    lambda u, v: u.__setitem__(slice(None, None, 2), v[::2]),
    lambda u, v: u.__setitem__(slice(None, None, -1), u + v),
    lambda u, v: u.__isub__(u.mean()),
    lambda u, v: np.add(u, v, out=v),
    lambda u, v: v.__setitem__(u > 0.5, 0.0),
    lambda u, v: v.__setitem__(slice(2, 4), u[:2]),
    lambda u, v: u.__setitem__(0, v.sum()),
]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(WRITES) - 1), min_size=1, max_size=3), st.integers(4, 9),
       st.sampled_from(["distinct", "same", "overlapping"]))
def test_random_write_sequences_match_numpy(ops, n, how):
    def program(u, v):
        for i in ops:
            WRITES[i](u, v)

    f = tj.jit(program)
    rng = np.random.default_rng(n)
    for _ in range(2):
        base = rng.random(n + 1)
        mine = base.copy()
        if how == "distinct":
            args, margs = (base[:n].copy(), base[1:].copy()), (mine[:n].copy(), mine[1:].copy())
        elif how == "same":  # f(a, a): one array, as in numpy
            args, margs = (base[:n],) * 2, (mine[:n],) * 2
        else:  # overlapping views: tracejit reads each as it was before the call, numpy sees the writes
            if any(i not in (0, 6) for i in ops):
                return
            args, margs = (base[:n], base[1:]), (mine[:n], mine[1:])
        program(*args)
        f(*margs)
        np.testing.assert_allclose(mine, base, rtol=1e-12)
        for a, m in zip(args, margs):
            np.testing.assert_allclose(m, a, rtol=1e-12)
