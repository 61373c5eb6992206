"""More of Theano's surface that real programs use: subtensor writes, shape helpers, Out, copy(swap=), maker.fgraph,
gradient helpers, extra_ops and special functions."""
import numpy as np
import pytest
from scipy import special

import tracejit as tj
import tracejit.tensor as T
from tracejit import function, shared
from tracejit import theano

X = np.arange(6.0).reshape(2, 3)


def test_set_and_inc_subtensor_write_a_copy_of_the_whole_array():
    x = T.dmatrix("x")
    f = function([x], [T.set_subtensor(x[0, 1:], -1.0), T.inc_subtensor(x[:, 0], 10.0), x])
    a, b, same = f(X)
    np.testing.assert_array_equal(a, [[0, -1, -1], [3, 4, 5]])
    np.testing.assert_array_equal(b, [[10, 1, 2], [13, 4, 5]])
    np.testing.assert_array_equal(same, X)  # the variable itself is not written


def test_inc_subtensor_with_repeated_rows_accumulates_like_theano():
    w, idx = T.dmatrix("w"), T.lvector("idx")
    f = function([w, idx], T.inc_subtensor(w[idx], 1.0))
    out = f(np.zeros((3, 2)), np.array([0, 2, 0]))
    np.testing.assert_array_equal(out, [[2, 2], [0, 0], [1, 1]])


def test_set_subtensor_gradient_and_symbolic_index():
    x, i = T.dvector("x"), T.lscalar("i")
    y = T.set_subtensor(x[i], 0.0)
    g = function([x, i], T.grad((y ** 2).sum(), x))(np.array([1.0, 2.0, 3.0]), 1)
    np.testing.assert_array_equal(g, [2.0, 0.0, 6.0])


def test_subtensor_writes_need_an_indexed_variable():
    with pytest.raises(TypeError, match="set_subtensor: the first argument must be an indexed variable"):
        T.set_subtensor(T.dmatrix("x"), 1.0)


def test_shape_helpers():
    v, x = T.dvector("v"), T.dmatrix("x")
    f = function([v, x], [T.shape_padleft(v).shape, T.shape_padright(v, 2).shape, T.shape_padaxis(v, 1).shape,
                          T.addbroadcast(x[:1], 0) + x, T.patternbroadcast(x, (False, False)),
                          T.specify_shape(x, (2, 3)).sum()])
    l, r, ax, added, same, total = f(np.ones(3), X)
    assert l.tolist() == [1, 3] and r.tolist() == [3, 1, 1] and ax.tolist() == [3, 1]
    np.testing.assert_array_equal(added, X + X[:1])
    np.testing.assert_array_equal(same, X)
    with pytest.raises(ValueError, match="specify_shape: axis 1 has length"):
        T.specify_shape(T.TensorType("float64", (False, True))("r"), (2, 3))
    bad = function([x], T.addbroadcast(x, 0).sum())
    with pytest.raises(ValueError):
        bad(X)  # axis 0 has length 2, not 1


def test_tensor_type_makes_variables():
    t3 = T.TensorType("float64", (False, True, False))
    t = t3("t")
    assert t.ndim == 3 and t.broadcastable == (False, True, False) and t.dtype == "float64"
    assert function([t], t.sum())(np.ones((2, 1, 3))) == 6.0


def test_out_copy_swap_and_maker():
    state, inc = shared(0), T.iscalar("inc")
    acc = function([inc], theano.Out(state), updates=[(state, state + inc)])
    assert acc(1) == 0 and state.get_value() == 1
    other = shared(100)
    acc2 = acc.copy(swap={state: other})
    assert acc2(5) == 100 and other.get_value() == 105 and state.get_value() == 1
    frozen = acc.copy(delete_updates=True)
    assert frozen(7) == 1 and state.get_value() == 1
    x = T.dmatrix("x")
    nodes = function([x], T.exp(x) + 1).maker.fgraph.toposort()
    assert [n.prim for n in nodes][-1] in ("add", "exp") and len(nodes) >= 1


def test_gradient_helpers():
    v = T.dvector("v")
    clipped = function([v], T.grad(theano.gradient.grad_clip(v * 10, -1, 1).sum() * 3, v))(np.ones(2))
    np.testing.assert_array_equal(clipped, [10.0, 10.0])  # the upstream 3 is clipped to 1, then times 10
    scaled = function([v], [theano.gradient.grad_scale(v, 0.5).sum(), T.grad(theano.gradient.grad_scale(v ** 2, 0.5).sum(), v)])
    total, g = scaled(np.array([1.0, 2.0]))
    assert total == 3.0 and g.tolist() == [1.0, 2.0]


def test_max_and_argmax_stacklists_extra_ops_and_special_functions():
    x, v = T.dmatrix("x"), T.dvector("v")
    m, a = function([x], T.max_and_argmax(x, axis=1))(X)
    assert m.tolist() == [2, 5] and a.tolist() == [2, 2]
    s = T.dscalar("s")
    assert function([s], T.stacklists([[s, 2 * s], [3 * s, 4 * s]]))(1.0).tolist() == [[1, 2], [3, 4]]
    cs, rep, oh = function([v], [T.extra_ops.cumsum(v), T.extra_ops.repeat(v, 2),
                                 T.extra_ops.to_one_hot(T.cast(v, "int64"), 3)])(np.array([0.0, 2.0]))
    assert cs.tolist() == [0, 2] and rep.tolist() == [0, 0, 2, 2] and oh.tolist() == [[1, 0, 0], [0, 0, 1]]
    y = np.array([0.3, 1.7])
    outs = function([v], [T.erf(v), T.erfinv(v / 2), T.gammaln(v), T.psi(v)])(y)
    for got, want in zip(outs, [special.erf(y), special.erfinv(y / 2), special.gammaln(y), special.psi(y)]):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_tag_keeps_annotations():
    x = T.dmatrix("x")
    x.tag.test_value = X
    assert x.tag.test_value is X


@pytest.mark.parametrize("make", [lambda a, b: slice(a, b), lambda a, b: slice(a, None, 2),
                                  lambda a, b: slice(None, b), lambda a, b: slice(b, a, -1),
                                  lambda a, b: slice(a, b, 3)])
def test_slices_with_symbolic_bounds_follow_numpy(make):
    data = shared(np.arange(20.0).reshape(10, 2))
    a, b = T.lscalar("a"), T.lscalar("b")
    f = function([a, b], data[make(a, b)] * 1.0, on_unused_input="ignore")
    for lo, hi in [(2, 5), (0, 10), (-3, -1), (7, 30), (5, 2), (-20, 4), (9, 9)]:
        np.testing.assert_array_equal(f(lo, hi), data.get_value()[make(lo, hi)], err_msg=f"{lo}, {hi}")


def test_minibatch_givens_as_in_the_deep_learning_tutorials():
    rng = np.random.default_rng(0)
    xs, ys = shared(rng.standard_normal((50, 3))), shared((rng.random(50) > 0.5).astype(np.int64))
    x, y, index = T.dmatrix("x"), T.lvector("y"), T.lscalar("index")
    w = shared(np.zeros((3, 2)), name="w")
    p = T.nnet.softmax(T.dot(x, w))
    cost = -T.mean(T.log(p)[T.arange(y.shape[0]), y])
    batch = 20
    train = function([index], cost, updates=[(w, w - 0.5 * T.grad(cost, w))],
                     givens={x: xs[index * batch:(index + 1) * batch], y: ys[index * batch:(index + 1) * batch]})
    first = [float(train(i)) for i in range(3)]  # the last batch has 10 rows (numpy clips the slice)
    later = [float(train(i)) for i in range(3)]
    assert first[0] == pytest.approx(np.log(2)) and sum(later) < sum(first)


def test_scan_body_reading_a_minibatch_of_run_time_length():
    data, i, w = shared(np.arange(12.0).reshape(6, 2)), T.lscalar("i"), T.dmatrix("w")
    x = data[i * 2:(i + 1) * 2]
    ys, _ = tj.scan(lambda h: T.tanh(T.dot(h, w) + x.sum()), outputs_info=x, n_steps=3)
    f = function([i, w], ys[-1])
    h = data.get_value()[2:4]
    for _ in range(3):
        h = np.tanh(h @ np.eye(2) + data.get_value()[2:4].sum())
    np.testing.assert_allclose(f(1, np.eye(2)), h)


def test_print_prints_at_each_call_and_passes_gradients(capsys):
    import tracejit.theano as th
    x = T.dvector("x")
    xp = th.printing.Print("x is")(x)
    f = th.function([x], [xp * 2, T.grad((xp ** 2).sum(), x)])
    out, g = f(np.array([1.0, 2.0]))
    np.testing.assert_allclose(out, [2.0, 4.0])
    np.testing.assert_allclose(g, [2.0, 4.0])
    assert capsys.readouterr().out.count("x is __str__ = [1. 2.]") >= 1
    f2 = th.function([x], th.printing.Print("v", attrs=("shape",))(x) + 1)
    f2(np.zeros(3))
    assert "v shape = (3,)" in capsys.readouterr().out


def test_variable_type_is_callable_and_compares_equal():
    x, r = T.dvector("x"), T.drow("r")
    y, r2 = x.type(), r.type("r2")
    assert y.type == x.type and r2.broadcastable == (True, False) and r2.name == "r2"
    import tracejit.theano as th
    f = th.function([x, y], x + y)
    np.testing.assert_allclose(f(np.ones(2), np.ones(2)), [2.0, 2.0])
    assert x.type != T.fvector().type


def test_user_ops_with_perform_grad_and_as_op():
    """The 'Extending Theano' tutorial's ops: make_node + perform + grad, itypes/otypes, __props__, as_op."""
    import tracejit.theano as th

    class DoubleOp(th.Op):
        __props__ = ()

        def make_node(self, x):
            x = T.as_tensor_variable(x)
            return th.Apply(self, [x], [x.type()])

        def perform(self, node, inputs, output_storage):
            output_storage[0][0] = inputs[0] * 2

        def grad(self, inputs, output_grads):
            return [output_grads[0] * 2]

    class Scale(th.Op):
        __props__ = ("a",)
        itypes, otypes = [T.dvector], [T.dvector]

        def __init__(self, a):
            self.a = a

        def perform(self, node, inputs, output_storage):
            output_storage[0][0] = self.a * inputs[0]

    x, v = T.dmatrix("x"), T.dvector("v")
    y = DoubleOp()(x)
    f = th.function([x], [y + 1, T.grad((DoubleOp()(x) ** 2).sum(), x)])
    X = np.random.default_rng(0).standard_normal((5, 4))
    out, g = f(X)
    np.testing.assert_allclose(out, 2 * X + 1)
    np.testing.assert_allclose(g, 8 * X)
    assert Scale(2) == Scale(2) and Scale(2) != Scale(3)
    np.testing.assert_allclose(th.function([v], Scale(3)(v))(np.ones(3)), [3.0, 3.0, 3.0])
    with pytest.raises(NotImplementedError, match="Scale.grad is not implemented"):
        T.grad(Scale(3)(v).sum(), v)
    with pytest.raises(TypeError, match="itypes"):
        Scale(3)(x)

    @th.compile.ops.as_op(itypes=[T.fmatrix, T.fmatrix], otypes=[T.fmatrix])
    def numpy_dot(a, b):
        return np.dot(a, b)
    a, b = T.fmatrix(), T.fmatrix()
    A, B = np.ones((3, 4), np.float32), np.ones((4, 2), np.float32)
    got = th.function([a, b], numpy_dot(a, b) * 2)(A, B)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 8.0)
