"""The Theano-style API: the tutorial's programs, constructors, function/shared/updates/givens, grad, pp, errors."""
import re
import runpy
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit import tensor
from tracejit.theano import MissingInputError, UnusedInputError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FLOAT = r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?"


def run_example(name, capsys):
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def numbers(text):
    return [float(x) for x in re.findall(FLOAT, text)]


def logistic(a):
    return 1 / (1 + np.exp(-np.asarray(a, float)))


# ------------------------------------------------------------------------------------------------ the tutorial
def test_example_adding(capsys):
    out = run_example("theano_adding.py", capsys).splitlines()
    assert out[0] == "4.0"
    assert out[1] == "((a + b) - a)"


def test_example_logistic(capsys):
    out = run_example("theano_logistic.py", capsys)
    np.testing.assert_allclose(numbers(out), logistic([[0, 1], [-1, -2]]).ravel(), rtol=1e-7)
    assert "0.73105858" in out and "0.11920292" in out


def test_example_multiple_outputs(capsys):
    out = run_example("theano_multiple_outputs.py", capsys)
    d = np.array([[1, 1], [1, 1]]) - np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(numbers(out), np.concatenate([d.ravel(), abs(d).ravel(), (d ** 2).ravel()]))


def test_example_dlogistic(capsys):
    out = run_example("theano_dlogistic.py", capsys)
    s = logistic([[0, 1], [-1, -2]])
    vals = numbers(out.split("\n(")[0])
    np.testing.assert_allclose(vals, (s * (1 - s)).ravel(), rtol=1e-7)
    assert "0.25" in out and "0.19661193" in out and "0.10499359" in out


def test_example_training(capsys):
    out = run_example("theano_training.py", capsys).split()
    ys = [float(v) for v in out]
    expected, y = [], 0.9
    for _ in range(10):
        expected.append(y)
        y = 20 - 0.6 * (20 - y)  # each step closes 40% of the gap to the target
    np.testing.assert_allclose(ys, expected, rtol=1e-6)
    np.testing.assert_allclose(ys[:3], [0.9, 8.54, 13.124], rtol=1e-9)


def test_example_logistic_regression(capsys):
    out = run_example("theano_logistic_regression.py", capsys)
    cost, acc = numbers(out)
    assert np.isfinite(cost) and cost < 10  # gradients of log(1 - sigmoid) stay finite in the saturated start
    assert acc > 0.8


# ------------------------------------------------------------------------------------------------ constructors
KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4}
PREFIX = {"b": np.int8, "i": np.int32, "l": np.int64, "f": np.float32, "d": np.float64}


def test_typed_constructors():
    names = ["dscalar", "dvector", "dmatrix", "dtensor3", "fscalar", "fvector", "fmatrix", "ftensor3", "iscalar",
             "ivector", "imatrix", "lscalar", "lvector", "lmatrix", "bscalar", "bvector", "bmatrix"]
    for n in names:
        kind = n[1:]
        v = getattr(tensor, n)("v")
        assert v.ndim == KINDS[kind], n
        assert v.dtype == PREFIX[n[0]], n
        assert v.name == "v" and v.type_name == n
        assert getattr(tensor, n)().name is None


def test_generic_constructors_default_float64():
    for kind, nd in KINDS.items():
        v = getattr(tensor, kind)("a")
        assert (v.ndim, v.dtype) == (nd, np.float64)
        w = getattr(tensor, kind)("b", dtype="float32")
        assert w.dtype == np.float32


def test_plurals():
    plurals = ["dscalars", "dvectors", "dmatrices", "fscalars", "fvectors", "fmatrices", "iscalars", "ivectors",
               "imatrices", "lscalars", "lvectors", "lmatrices"]
    for p in plurals:
        a, b, c = getattr(tensor, p)("a", "b", "c")
        assert [v.name for v in (a, b, c)] == ["a", "b", "c"]
        assert a.dtype == PREFIX[p[0]] and a is not b
    one = tensor.dscalars("only")
    assert one.name == "only"
    three = tensor.fvectors(3)
    assert len(three) == 3 and all(v.ndim == 1 and v.name is None for v in three)


def test_symbolic_dims_named_after_variable():
    x = tensor.dmatrix("named_dims")  # (a name no other test uses: symbols are unique per process)
    assert [str(d) for d in x.shape] == ["named_dims0", "named_dims1"]
    x2 = tensor.dmatrix("named_dims")  # a second variable with the same name gets distinct symbols
    assert {str(d) for d in x2.shape}.isdisjoint({"named_dims0", "named_dims1"})


# ------------------------------------------------------------------------------------------------ math names
def _f(inputs, out, *args):
    return tj.function(inputs, out)(*args)


A = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, -2.5]])
B = np.array([[0.5, 1.0, -2.0], [1.0, 0.0, -3.0]])


@pytest.mark.parametrize("name, ref", [("le", np.less_equal), ("lt", np.less), ("ge", np.greater_equal),
                                       ("gt", np.greater), ("eq", np.equal), ("neq", np.not_equal)])
def test_comparison_names(name, ref):
    x, y = tensor.dmatrices("x", "y")
    np.testing.assert_array_equal(_f([x, y], getattr(tensor, name)(x, y), A, B), ref(A, B))


def test_theano_math_names():
    x, y = tensor.dmatrices("x", "y")
    np.testing.assert_allclose(_f([x], tensor.sqr(x), A), A ** 2)
    np.testing.assert_allclose(_f([x, y], tensor.switch(x > y, x, y), A, B), np.where(A > B, A, B))
    c = _f([x], tensor.cast(x, "int32"), A)
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, A.astype(np.int32))
    assert _f([x], tensor.cast(x, "float32"), A).dtype == np.float32
    np.testing.assert_allclose(_f([x], tensor.sigmoid(x), A), logistic(A))
    np.testing.assert_allclose(_f([x], tensor.softplus(x), A), np.log1p(np.exp(A)))
    np.testing.assert_allclose(_f([x], tensor.nnet.sigmoid(x), A), logistic(A))
    e = np.exp(A - A.max(axis=1, keepdims=True))
    np.testing.assert_allclose(_f([x], tensor.nnet.softmax(x), A), e / e.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(_f([x, y], tensor.abs_(x) + tensor.neg(y) * 0, A, B), abs(A))


def test_more_theano_names():
    x = tensor.dmatrix("x")
    p = tensor.nnet.sigmoid(x)
    outs = [tensor.inv(x + 10), tensor.true_div(x, 2), tensor.int_div(x, 2), tensor.flatten(x), tensor.nnet.relu(x),
            tensor.nnet.binary_crossentropy(p, 1.0), tensor.mul(x, x, 2)]
    got = tj.function([x], outs)(A)
    s = logistic(A)
    ref = [1 / (A + 10), A / 2, A // 2, A.ravel(), np.maximum(A, 0), -np.log(s), A * A * 2]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-12)


def test_numpy_named_functions():
    x = tensor.dmatrix("x")
    for name in ["exp", "log1p", "tanh", "sqrt", "sin", "floor"]:
        fn = tj.function([x], getattr(tensor, name)(abs(x)))
        np.testing.assert_allclose(fn(A), getattr(np, name)(abs(A)), err_msg=name)
    np.testing.assert_allclose(_f([x], tensor.sum(x, axis=0), A), A.sum(axis=0))
    np.testing.assert_allclose(_f([x], tensor.maximum(x, 0.0), A), np.maximum(A, 0))
    np.testing.assert_allclose(_f([x], tensor.dot(x, x.T), A), A @ A.T)


def test_variable_operators_methods_and_numpy_protocols():
    x = tensor.dmatrix("x")
    v = tensor.dvector("v")
    outs = [x.sum(), x.mean(axis=0), x.T, x.reshape((3, 2)), x.dot(v), x[1], x[:, 1:], np.exp(x),
            np.sum(x, axis=1), -x, x ** 2, 2 - x, x / 2, x @ v, abs(x).max()]
    f = tj.function([x, v], outs)
    V = np.array([1.0, 2.0, 3.0])
    ref = [A.sum(), A.mean(axis=0), A.T, A.reshape((3, 2)), A.dot(V), A[1], A[:, 1:], np.exp(A), A.sum(axis=1),
           -A, A ** 2, 2 - A, A / 2, A @ V, abs(A).max()]
    for got, want in zip(f(A, V), ref):
        np.testing.assert_allclose(got, want)
    assert isinstance(x + 1, tj.trace.symbolic.Variable)
    assert isinstance(np.exp(x), tj.trace.symbolic.Variable)


# ------------------------------------------------------------------------------------------------ function
def test_single_output_is_an_array_list_output_is_a_list():
    x, y = tensor.dscalars("x", "y")
    r = tj.function([x, y], x + y)(1.5, 2.5)
    assert isinstance(r, np.ndarray) and r.shape == () and str(r) == "4.0"
    rs = tj.function([x, y], [x + y, x * y])(1.5, 2.5)
    assert isinstance(rs, list) and [float(a) for a in rs] == [4.0, 3.75]


def test_keyword_arguments_by_input_name():
    x, y = tensor.dscalars("x", "y")
    f = tj.function([x, y], x - y)
    assert float(f(y=1.0, x=3.0)) == 2.0
    assert float(f(3.0, y=1.0)) == 2.0


def test_new_lengths_do_not_recompile():
    x = tensor.dvector("x")
    f = tj.function([x], x * 2)
    for n in (3, 5, 1000):
        np.testing.assert_allclose(f(np.arange(n, dtype=float)), np.arange(n) * 2.0)
    assert f.num_compiled == 1


def test_length_one_axes_get_their_own_executable():
    x, y = tensor.dmatrices("x", "y")
    f = tj.function([x, y], (x - y).mean())
    a, b = np.ones((1, 3)), np.arange(3.0).reshape(1, 3)
    np.testing.assert_allclose(f(a, b), (a - b).mean())
    np.testing.assert_allclose(f(np.ones((4, 3)), np.zeros((4, 3))), 1.0)
    assert f.num_compiled == 2
    with pytest.raises(ValueError, match="x0|y0"):  # declared axes do not broadcast: 1 against 4 is an error
        f(np.ones((1, 3)), np.zeros((4, 3)))


def test_equal_axes_are_unified_and_checked():
    x = tensor.dvector("xu")
    W = tj.shared(np.ones(3), "Wu")
    f = tj.function([x], (x * W).sum())
    assert "Wu:float64(xu0,)" in tj.debugprint(f, file="str")  # one length, read once, no run-time check left
    assert float(f(np.arange(3.0))) == 3.0
    with pytest.raises(ValueError, match="'xu'.*|'Wu'.*") as e:
        f(np.ones(4))
    assert "'xu'" in str(e.value) and "'Wu'" in str(e.value)


def test_argument_conversion():
    x = tensor.fvector("x")
    f = tj.function([x], x * 2)
    assert f([1.0, 2.5]).dtype == np.float32
    np.testing.assert_allclose(f(np.array([1.0, 2.5])), [2.0, 5.0])  # float64 exactly representable: accepted
    np.testing.assert_allclose(f(np.array([1, 2], dtype=np.int64)), [2.0, 4.0])
    with pytest.raises(TypeError, match="'x'.*float32.*allow_input_downcast"):
        f(np.array([0.1, 0.2]))
    g = tj.function([x], x * 2, allow_input_downcast=True)
    np.testing.assert_allclose(g(np.array([0.1, 0.2])), np.float32([0.2, 0.4]))
    i = tensor.ivector("i")
    h = tj.function([i], i + 1)
    np.testing.assert_array_equal(h([1, 2]), [2, 3])
    with pytest.raises(TypeError, match="'i'"):
        h([1.5, 2.0])


def test_int8_inputs_are_range_checked():
    b = tensor.bscalar("b")
    f = tj.function([b], b * 2)
    assert int(f(100)) == 200  # computes in int32: tracejit has no 8-bit arithmetic
    with pytest.raises(TypeError, match="'b'.*int8"):
        f(300)


def test_noncontiguous_arrays():
    x = tensor.dmatrix("x")
    f = tj.function([x], x + 1)
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(f(a.T), a.T + 1)
    np.testing.assert_allclose(f(a[:, ::2]), a[:, ::2] + 1)


# ------------------------------------------------------------------------------------------------ shared, updates
def test_shared_value_access():
    W = tj.shared(np.array([1.0, 2.0]), "W")
    assert W.name == "W" and W.dtype == np.float64
    v = W.get_value()
    v[0] = 99
    assert W.get_value()[0] == 1.0  # get_value returns a copy
    W.set_value([3.0, 4.0])
    np.testing.assert_array_equal(W.get_value(), [3.0, 4.0])
    with pytest.raises(TypeError, match="'W'"):
        W.set_value(np.ones((2, 2)))
    with pytest.raises(TypeError, match="'W'"):
        W.set_value(np.array([0.1], np.float64).astype(object))


def test_shared_is_read_at_each_call():
    W = tj.shared(np.array([1.0, 2.0]), "W")
    x = tensor.dvector("x")
    f = tj.function([x], (x * W).sum())
    assert float(f([1.0, 1.0])) == 3.0
    W.set_value([10.0, 20.0])
    assert float(f([1.0, 1.0])) == 30.0
    W.set_value([1.0, 1.0, 1.0])  # a new length: no recompile
    assert float(f([1.0, 1.0, 1.0])) == 3.0
    assert f.num_compiled == 1


def test_jit_function_closing_over_shared():
    W = tj.shared(np.array([1.0, 2.0]), "W")

    @tj.jit
    def f(x):
        return x * W

    np.testing.assert_array_equal(f(np.ones(2)), [1.0, 2.0])
    W.set_value([5.0, 6.0])
    np.testing.assert_array_equal(f(np.ones(2)), [5.0, 6.0])
    assert f.cache_info().misses == 1


def test_updates_in_place_from_old_values():
    a = tj.shared(np.array([1.0, 2.0]), "a")
    b = tj.shared(np.array([10.0, 20.0]), "b")
    swap = tj.function([], [a + 0, b + 0], updates=[(a, b), (b, a)])
    before = a.get_value(borrow=True)
    old = swap()
    np.testing.assert_array_equal(old[0], [1.0, 2.0])
    np.testing.assert_array_equal(a.get_value(), [10.0, 20.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 2.0])
    assert a.get_value(borrow=True) is before  # same shape: written in place
    swap()
    np.testing.assert_array_equal(old[0], [1.0, 2.0])  # outputs already returned are not overwritten
    np.testing.assert_array_equal(a.get_value(), [1.0, 2.0])


def test_update_output_of_shared_itself_is_old_value():
    c = tj.shared(np.array(0.0), "count")
    inc = tj.function([], c, updates=[(c, c + 1)])
    assert [float(inc()) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert float(c.get_value()) == 3.0


def test_update_with_a_new_shape():
    s = tj.shared(np.zeros(2), "s")
    x = tensor.dvector("x")
    f = tj.function([x], [], updates={s: x * 2})
    f([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(s.get_value(), [2.0, 4.0, 6.0])


def test_update_type_errors():
    W = tj.shared(np.array([0.2, 0.7]), "W")
    x = tensor.fvector("x")
    with pytest.raises(TypeError, match="'W'.*float32"):
        tj.function([x], [], updates=[(W, x * 2)])
    with pytest.raises(TypeError, match="'W'.*dimension"):
        tj.function([], [], updates=[(W, W.sum())])
    with pytest.raises(TypeError, match="shared"):
        tj.function([x], [], updates=[(x, x * 2)])
    i = tj.shared(np.int64(0), "i")
    f = tj.function([], [], updates=[(i, i + 1)])  # Python ints keep the variable's dtype
    f()
    assert i.get_value() == 1


def test_givens():
    x, y = tensor.dscalars("x", "y")
    W = tj.shared(np.array(3.0), "W")
    f = tj.function([y], x * y, givens=[(x, W + 1)])
    assert float(f(2.0)) == 8.0
    with pytest.raises(TypeError, match="'x'"):
        tj.function([y], x * y, givens={x: tensor.dvector("v")})


# ------------------------------------------------------------------------------------------------ grad
def test_grad_structure_and_values():
    x = tensor.dvector("x")
    w = tensor.dvector("w")
    cost = ((x * w) ** 2).sum()
    gx = tensor.grad(cost, x)
    gl = tensor.grad(cost, [x, w])
    gt = tensor.grad(cost, (x, w))
    assert isinstance(gx, tj.trace.symbolic.Variable) and isinstance(gl, list) and isinstance(gt, tuple)
    X, Wv = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    got = tj.function([x, w], gl)(X, Wv)
    np.testing.assert_allclose(got[0], 2 * X * Wv ** 2)
    np.testing.assert_allclose(got[1], 2 * Wv * X ** 2)
    with pytest.raises(TypeError, match="scalar"):
        tensor.grad(x * 2, x)
    with pytest.raises(ValueError, match="'w'"):
        tensor.grad((x ** 2).sum(), w)


# ------------------------------------------------------------------------------------------------ printing
def test_pp():
    x, y = tensor.dscalars("x", "y")
    assert tj.pp((x + y) - x) == "((x + y) - x)"
    m = tensor.dmatrix("m")
    assert tj.pp(tensor.exp(-m).sum()) == "sum(exp(-m))"
    assert tj.pp(m.T * 2) == "(m.T * 2.0)"


def test_debugprint_variable_and_function(capsys):
    x = tensor.dmatrix("x")
    s = 1 / (1 + tensor.exp(-x))
    tj.debugprint(s)
    out = capsys.readouterr().out
    assert "x:float64(x" in out and "exp" in out and "negative" in out
    assert len(out.strip().splitlines()) == 2 + 4  # header, 4 equations, return
    W = tj.shared(np.ones(2), "Wd")
    v = tensor.dvector("v")
    f = tj.function([v], (v * W).sum(), updates=[(W, W * 2)])
    text = tj.debugprint(f, file="str")
    assert "Wd:float64(" in text and "multiply" in text and "Wd <- output 1" in text


def test_repr_and_html():
    x = tensor.dmatrix("x")
    assert "x" in repr(x) and "dmatrix" in repr(x)
    e = x + 1
    assert "(x + 1.0)" in repr(e)
    html = e._repr_html_()
    assert "<table>" in html and "float64" in html
    W = tj.shared(np.ones(3), "W")
    assert "SharedVariable" in repr(W)


def test_eval():
    x, y = tensor.dscalars("x", "y")
    assert float((x * y).eval({x: 2.0, y: 4.0})) == 8.0


# ------------------------------------------------------------------------------------------------ errors
def test_error_input_twice():
    x = tensor.dscalar("x")
    with pytest.raises(ValueError, match="'x'.*twice"):
        tj.function([x, x], x * 2)


def test_error_missing_input():
    x, z = tensor.dscalars("x", "zz")
    with pytest.raises(MissingInputError, match="'zz'"):
        tj.function([x], x + z)


def test_error_unused_input():
    x, u = tensor.dscalars("x", "unused")
    with pytest.raises(UnusedInputError, match="'unused'"):
        tj.function([x, u], x * 2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tj.function([x, u], x * 2, on_unused_input="warn")
    assert any("'unused'" in str(m.message) for m in w)
    f = tj.function([x, u], x * 2, on_unused_input="ignore")
    assert float(f(1.0, 5.0)) == 2.0


def test_error_wrong_number_of_arguments():
    x, y = tensor.dscalars("x", "y")
    f = tj.function([x, y], x + y)
    with pytest.raises(TypeError, match="'y'"):
        f(1.0)
    with pytest.raises(TypeError, match="2 argument"):
        f(1.0, 2.0, 3.0)


def test_error_wrong_rank():
    x = tensor.dmatrix("xr")
    f = tj.function([x], x + 1)
    with pytest.raises(TypeError, match="'xr'.*expected 2, got 1"):
        f([1.0, 2.0])


def test_error_unconvertible_value():
    x = tensor.dvector("xc")
    f = tj.function([x], x + 1)
    with pytest.raises(TypeError, match="'xc'"):
        f(["a", "b"])
    with pytest.raises(TypeError, match="'xc'"):
        f([[1.0], [2.0, 3.0]])


def test_error_bad_inputs_list():
    x = tensor.dscalar("x")
    with pytest.raises(TypeError, match="list"):
        tj.function(x, x * 2)
    with pytest.raises(TypeError, match="shared"):
        tj.function([tj.shared(1.0, "s")], x)
    with pytest.raises(TypeError, match="input 0"):
        tj.function([x + 1], x)


def test_symbolic_variable_has_no_value():
    x = tensor.dscalar("x")
    with pytest.raises(TypeError, match=r"\(x > 0.0\).*tensor.switch"):
        bool(x > 0)
    with pytest.raises(TypeError, match="'x'"):
        np.asarray(x)


# ------------------------------------------------------------------------------------------------ properties
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.floats(-3, 3))
def test_expression_matches_numpy_for_any_shape(n, m, c):
    f = _EXPR_FN
    a = np.linspace(-2, 2, n * m).reshape(n, m)
    b = np.full((n, m), c)
    got = f(a, b, c)
    np.testing.assert_allclose(got[0], np.tanh(a) * b - c, atol=1e-12)
    np.testing.assert_allclose(got[1], (a * b).sum(axis=1), atol=1e-12)


_hx, _hy = tensor.dmatrices("hx", "hy")
_hc = tensor.dscalar("hc")
_EXPR_FN = tj.function([_hx, _hy, _hc], [tensor.tanh(_hx) * _hy - _hc, (_hx * _hy).sum(axis=1)])
