"""Every error a user can cause: its type, its message, where its traceback ends, and that the next call works."""
from __future__ import annotations

import traceback

import numpy as np
import pytest
from numpy.exceptions import AxisError

import tracejit as tj
from conftest import assert_same


def _good_call_works(f, *args):
    """After an error, a good call through the same jitted function still returns numpy's answer."""
    with np.errstate(all="ignore"):
        assert_same(f(*args), f.__wrapped__(*args))


# ------------------------------------------------------------------------------------------------ concretization
def _if_positive(x):
    if x.sum() > 0:  # USER LINE: if
        return x
    return -x


def _bool(x):
    return bool(x.max())  # USER LINE: bool


def _float(x):
    return x * float(x.sum())  # USER LINE: float


def _int(x):
    return x * int(x[0])  # USER LINE: int


def _len(x):
    return x * len(x)  # USER LINE: len


def _while(x):
    while x.min() < 0:  # USER LINE: while
        x = x + 1
    return x


def _and(x):
    return (x > 0) and x  # USER LINE: and


def _range(x):
    return sum(x[i] for i in range(x.shape[0]))  # USER LINE: range


CONCRETE = {"if": (_if_positive, "bool"), "bool": (_bool, "bool"), "float": (_float, "float"),
            "int": (_int, "int"), "while": (_while, "bool"), "and": (_and, "bool")}
# len(x) and range(len(x)) specialize on the length now (issue 13; tests/test_numpy_programs.py)


@pytest.mark.parametrize("case", sorted(CONCRETE))
def test_concretization_error(case):
    fun, opname = CONCRETE[case]
    f = tj.jit(fun)
    x = np.arange(1.0, 5.0)
    with pytest.raises(tj.ConcretizationError) as info:
        f(x)
    err = info.value
    assert isinstance(err, TypeError)
    msg = str(err)
    assert opname in msg
    assert "traced" in msg
    if case != "len" and case != "range":
        assert "np.where" in msg
    assert "static_argnums" in msg
    # the traceback ends at the user's line, not inside tracejit
    last = traceback.extract_tb(err.__traceback__)[-1]
    assert last.filename == __file__, last
    assert f"USER LINE: {case}" in (last.line or "") or "USER LINE" in (last.line or ""), last.line
    # and the function still works with static arguments / the cache is untouched
    assert f.cache_info().size == 0


def test_concretization_fixed_with_static_argnums():
    f = tj.jit(lambda x, n: x * float(n), static_argnums=1)
    assert_same(f(np.ones(3), 2.5), np.full(3, 2.5))


def test_concretization_fixed_with_where():
    f = tj.jit(lambda x: np.where(x.sum() > 0, x, -x))
    assert_same(f(np.array([-1.0, -2.0])), np.array([1.0, 2.0]))


def test_traceback_filtering_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("TRACEJIT_TRACEBACK_FILTERING", "off")
    with pytest.raises(tj.ConcretizationError) as info:
        tj.jit(_bool)(np.ones(3))
    files = [fr.filename for fr in traceback.extract_tb(info.value.__traceback__)]
    assert any("tracejit" in f and "tests" not in f for f in files)


def test_len_of_static_length_works():
    f = tj.jit(lambda x: x * len(x))
    assert_same(f(np.ones((1, 3))), np.ones((1, 3)))


def test_np_asarray_of_tracer_is_a_concretization_error():
    with pytest.raises(tj.ConcretizationError, match="traced"):
        tj.jit(lambda x: np.asarray(x).tolist())(np.ones(2))


def test_item_and_tolist():
    for fun in (lambda x: x.sum().item(), lambda x: x.tolist()):
        with pytest.raises(tj.ConcretizationError, match="traced"):
            tj.jit(fun)(np.ones(2))


def test_setitem_follows_numpy():  # issue 13: writes are functional updates; the caller's array is updated
    def f(x):
        x[0] = 1.0
        return x
    x = np.zeros(3)
    assert_same(tj.jit(f)(x), np.array([1.0, 0, 0]))
    assert_same(x, np.array([1.0, 0, 0]))


# ------------------------------------------------------------------------------------------------ unsupported
@pytest.mark.parametrize("fun,name", [
    (lambda x: np.digitize(x, x), "digitize"),  # sort, fft, unique, partition, hfft, eig, lexsort and ediff1d were here before
    (lambda x: np.polyval(x, x), "polyval"),
    (lambda x: np.linalg.eig(np.array([[0.0, -1], [1, 0]]) + x[0]), "eig"),  # complex eigenvalues, at run time
    (lambda x: np.add.reduceat(x, [0, 1]), "reduceat"),  # (accumulate was here before)
])
def test_unsupported_numpy_function(fun, name):
    f = tj.jit(fun)
    with pytest.raises(NotImplementedError, match=name):
        f(np.arange(4.0))
    g = tj.jit(lambda x: fun(x) if False else np.sin(x))
    _good_call_works(g, np.arange(4.0))


def test_boolean_mask_read():  # formerly a refusal with advice: now a data-dependent length
    x = np.arange(-2.0, 3.0)
    np.testing.assert_array_equal(tj.jit(lambda x: x[x > 0])(x), x[x > 0])


def test_one_argument_where():  # formerly a refusal: np.nonzero
    x = np.array([1.0, -1.0, 2.0])
    np.testing.assert_array_equal(tj.jit(lambda x: np.where(x > 0))(x)[0], np.where(x > 0)[0])


# ------------------------------------------------------------------------------------------------ arguments
def test_wrong_number_of_arguments():
    f = tj.jit(lambda x, y: x + y)
    with pytest.raises(TypeError, match="argument"):
        f(np.ones(3))
    with pytest.raises(TypeError, match="argument"):
        f(np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(TypeError, match="z"):
        f(np.ones(3), np.ones(3), z=np.ones(3))
    _good_call_works(f, np.ones(3), np.ones(3))


@pytest.mark.parametrize("bad,dtype_name", [
    (np.ones(3, np.clongdouble), "complex"),  # complex64/128 are supported (issue 14)
    (np.ones(3, np.longdouble), "float128"),
    (np.array(["a", "b"]), "<U1"),
    (np.array([object(), 1], dtype=object), "object"),
    (np.clongdouble(1 + 2j), "complex"),
    (np.ones(3, "datetime64[s]"), "datetime64"),
])
def test_unsupported_dtype_names_the_argument(bad, dtype_name):
    def f(x, y):
        return x + y
    j = tj.jit(f)
    with pytest.raises(TypeError) as info:
        j(np.ones(3), bad)
    msg = str(info.value)
    assert dtype_name in msg or dtype_name.lstrip("<") in msg, msg
    assert "1" in msg or "y" in msg, msg  # names the argument: its leaf index or name
    _good_call_works(j, np.ones(3), np.ones(3))


def test_unsupported_dtype_inside_a_pytree():
    f = tj.jit(lambda d: d["a"] + d["b"])
    with pytest.raises(TypeError, match="complex"):
        f({"a": np.ones(2), "b": np.ones(2, np.clongdouble)})


def test_non_array_argument():
    f = tj.jit(lambda x: x)
    with pytest.raises(TypeError, match="object"):
        f(object())
    with pytest.raises(TypeError):
        f("a string")


def test_astype_to_unsupported_dtype():
    with pytest.raises(TypeError, match="float128"):
        tj.jit(lambda x: x.astype(np.longdouble))(np.ones(2))


@pytest.mark.parametrize("conv", [lambda x: (x * 100).astype(np.int8), lambda x: x.astype(np.uint32),
                                  lambda x: x.sum(dtype=np.int16), lambda x: np.multiply(x, 2).astype(np.uint8)])
def test_conversion_to_small_and_unsigned_dtypes(conv):
    """Small and unsigned integers were once stored as int32 and wrote past the end of the output; they are
    stored in their own width now (tests/test_dtypes.py has the rest)."""
    got, want = tj.jit(conv)(np.ones(40)), conv(np.ones(40))
    assert got.dtype == want.dtype and got.nbytes == want.nbytes
    np.testing.assert_array_equal(got, want)


def test_returning_a_non_array():
    with pytest.raises(TypeError, match="str"):
        tj.jit(lambda x: "hello")(np.ones(2))


# ------------------------------------------------------------------------------------------------ shapes
def test_broadcast_error_at_trace_time_names_both_shapes():
    c3, c4 = np.ones(3), np.ones(4)   # constants have static lengths: the trace itself fails
    f = tj.jit(lambda x: (x + c3) * c4)
    with pytest.raises(ValueError, match=r"broadcast.*\(3,\) \(4,\)"):
        f(np.ones(1))
    assert f.cache_info() == (0, 0, 0)
    g = tj.jit(lambda x, y: x + y)
    with pytest.raises(ValueError, match=r"broadcast.*\(2, 3\) \(2, 1, 4\)"):
        g(np.ones((2, 3)), np.ones((2, 1, 4)))
    _good_call_works(g, np.ones((2, 3)), np.ones(3))


def test_broadcast_error_at_call_time_names_both_shapes():
    f = tj.jit(lambda x, y: x * y)
    assert_same(f(np.ones((4, 3)), np.ones(3)), np.ones((4, 3)))
    with pytest.raises(ValueError) as info:
        f(np.ones((4, 3)), np.ones(5))
    msg = str(info.value)
    assert "(4,3)" in msg.replace(" ", "") and "(5,)" in msg.replace(" ", ""), msg
    assert f.cache_info().misses == 1  # the same program checked the lengths at run time
    _good_call_works(f, np.ones((7, 5)), np.ones(5))


def test_broadcast_error_deep_in_the_program():
    f = tj.jit(lambda x, y: np.exp(x).sum(axis=0) + y)
    f(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="broadcast"):
        f(np.ones((2, 3)), np.ones(4))


@pytest.mark.parametrize("fun", [lambda a, d: a - d[:1], lambda a, d: d[:1] * 2 + a,
                                 lambda a, d: a - d.reshape(-1, 300).reshape(-1, 10)[:1]])
def test_lengths_that_are_one_only_at_run_time_raise_instead_of_misreading(fun):
    """A slice whose length depends on the input is addressed as a full axis: when it is 1 at run time numpy
    broadcasts it and the compiled program cannot, so the call raises (it used to read the wrong rows)."""
    a, d = np.random.default_rng(0).random((30, 10)), np.random.default_rng(1).random((30, 10))
    with pytest.raises(ValueError, match=r"broadcast.*\(30, 10\) \(1, 10\)|\(1, 10\) \(30, 10\)") as info:
        tj.jit(fun)(a, d)
    assert "x[0][np.newaxis] instead of x[:1]" in str(info.value)
    fixed = tj.jit(lambda a, d: a - d[0][np.newaxis])
    assert_same(fixed(a, d), a - d[:1])
    assert_same(tj.jit(lambda a, d: a[:2] - d[:2])(a, d), a[:2] - d[:2])  # equal symbolic lengths still fine


def test_reshape_impossible_size():
    with pytest.raises(ValueError, match="reshape"):
        tj.jit(lambda x: x.reshape(4, 2))(np.ones((1, 7)))
    f = tj.jit(lambda x: x.reshape(2, -1))
    assert_same(f(np.arange(6.0)), np.arange(6.0).reshape(2, -1))
    with pytest.raises(ValueError, match="reshape"):
        f(np.arange(7.0))  # found at call time: the length is symbolic
    g = tj.jit(lambda x: x.reshape(-1, -1))
    with pytest.raises(ValueError, match="one unknown"):
        g(np.ones(4))
    _good_call_works(f, np.arange(8.0))


@pytest.mark.parametrize("fun", [
    lambda x: x.sum(axis=2),
    lambda x: np.mean(x, axis=-3),
    lambda x: np.expand_dims(x, 4),
    lambda x: np.swapaxes(x, 0, 5),
    lambda x: np.moveaxis(x, 3, 0),
    lambda x: np.concatenate([x, x], axis=2),
    lambda x: np.argmax(x, axis=2),
    lambda x: np.transpose(x, (0, 2)),
])
def test_out_of_range_axis(fun):
    with pytest.raises((AxisError, ValueError)) as info:
        tj.jit(fun)(np.ones((2, 3)))
    if isinstance(info.value, AxisError):
        assert "out of bounds" in str(info.value) or "axis" in str(info.value)


def test_axis_error_is_numpys():
    with pytest.raises(AxisError, match="axis 2 is out of bounds for array of dimension 2"):
        tj.jit(lambda x: x.sum(axis=2))(np.ones((2, 3)))


def test_matmul_core_dims():
    with pytest.raises(ValueError, match="matmul"):
        tj.jit(lambda a, b: a @ b)(np.ones((2, 1)), np.ones((3, 2)))  # 1 vs 3: static
    f = tj.jit(lambda a, b: a @ b)
    f(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="matmul.*size 4 is different from 3"):
        f(np.ones((2, 3)), np.ones((4, 2)))  # 3 vs 4: at call time
    with pytest.raises(ValueError, match="matmul"):
        f(np.ones(3), np.ones(2))
    _good_call_works(f, np.ones((2, 4)), np.ones((4, 5)))


def test_index_out_of_bounds():
    with pytest.raises(IndexError, match="out of bounds"):
        tj.jit(lambda x: x[0, 1])(np.ones((2, 1)))
    f = tj.jit(lambda x: x[5])
    assert_same(f(np.arange(8.0)), np.asarray(5.0))
    with pytest.raises(IndexError):
        f(np.arange(3.0))  # symbolic length: checked at call time
    with pytest.raises(IndexError, match="too many indices"):
        tj.jit(lambda x: x[0, 0, 0])(np.ones((2, 2)))


@pytest.mark.parametrize("idx", [np.array([0, 3]), np.array([-4]), np.array([[1], [99]])])
def test_integer_array_index_out_of_bounds_at_call_time(idx):
    f = tj.jit(lambda x, i: x[i] * 2)
    assert_same(f(np.arange(3.0), np.array([0, 2, -3])), np.array([0.0, 4.0, 0.0]))
    with pytest.raises(IndexError):
        f(np.arange(3.0), idx)
    assert f.cache_info().misses <= 2
    _good_call_works(f, np.arange(5.0), np.array([4, -5]))


def test_constant_integer_array_index_out_of_bounds():
    f = tj.jit(lambda x: x[np.array([0, 9])])
    with pytest.raises(IndexError):
        f(np.arange(3.0))
    assert_same(f(np.arange(10.0)), np.array([0.0, 9.0]))


def test_unhashable_static_argument_message():
    f = tj.jit(lambda x, s: x, static_argnums=1)
    with pytest.raises(TypeError, match="hashable"):
        f(np.ones(2), {"a": 1})
    with pytest.raises(TypeError, match="hashable"):
        tj.jit(lambda x, s: x, static_argnames="s")(np.ones(2), s=[1])


def test_unknown_device():
    with pytest.raises(ValueError, match="device"):
        tj.jit(lambda x: x, device="tpu")


def test_errors_leave_cache_consistent():
    f = tj.jit(lambda x, y: x + y)
    for bad in [(np.ones(3), np.ones(4)), (np.ones(3), np.ones(3, np.clongdouble)), (np.ones(3),)]:
        with pytest.raises((ValueError, TypeError)):
            f(*bad)
    assert_same(f(np.ones(3), np.ones(3)), np.full(3, 2.0))
    info = f.cache_info()
    assert info.size == info.misses


def test_concatenate_mismatch_at_call_time():
    f = tj.jit(lambda a, b: np.concatenate([a, b]))
    assert_same(f(np.ones((2, 3)), np.ones((4, 3))), np.ones((6, 3)))
    with pytest.raises(ValueError, match="concatenation axis must match exactly"):
        f(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError, match="concatenation axis must match exactly"):
        tj.jit(lambda a, b: np.concatenate([a, b]))(np.ones((2, 1)), np.ones((3, 2)))  # 1 does not broadcast
    _good_call_works(f, np.ones((1, 7)), np.ones((3, 7)))
