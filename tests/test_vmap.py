"""tj.vmap: batching as an IR transformation (passes/batching.py, vectorize.py).

Results are compared with a Python loop + np.stack (the definition of vmap) and with jax.vmap (x64). Most checks
run eagerly (trace + interpret, fast); a few compile under jit, where the batch length is symbolic.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.ir.primitives import BINARY_UFUNCS, PRIMS, UNARY_UFUNCS
from tracejit.ir.ops import iota as arange
from tracejit.passes.batching import RULES
from tracejit.ir import ops
from tracejit.ir.interpret import evaluate
from tracejit.ir.graph import Graph, Value, toposort
from tracejit.ir.types import Dim, TensorType

R = np.random.default_rng(0)


def loop(f, *args, in_axes=0, out_axes=0):
    """The definition: apply ``f`` to each example (array leaves only, tuples of args) and stack."""
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    n = [np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None][0]
    outs = [f(*[a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, axes)]) for i in range(n)]
    if isinstance(outs[0], tuple):
        oa = out_axes if isinstance(out_axes, tuple) else (out_axes,) * len(outs[0])
        return tuple(np.stack([o[k] for o in outs], axis=oa[k]) for k in range(len(outs[0])))
    return np.stack(outs, axis=out_axes)


def check(f, *args, in_axes=0, out_axes=0, rtol=1e-12, jit=False):
    got = tj.vmap(f, in_axes=in_axes, out_axes=out_axes)(*args)
    want = loop(f, *args, in_axes=in_axes, out_axes=out_axes)
    if jit:
        got_jit = tj.jit(tj.vmap(f, in_axes=in_axes, out_axes=out_axes))(*args)
        _same(got_jit, want, rtol)
    _same(got, want, rtol)


def _same(got, want, rtol):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w, rtol)
        return
    got = np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, equal_nan=True)


# ------------------------------------------------------------------------------------------------ rules
def test_every_primitive_has_a_batching_rule():
    assert [n for n in PRIMS if n not in RULES] == []


@pytest.mark.parametrize("n", [0, 1, 2, 5, 300, 70000])
def test_arange_of_a_symbolic_length(n):
    """The positions used to offset batched indices (the iota primitive), interpreted and compiled."""
    sym = Dim.symbol("n")
    with ops.Builder():
        x = Value(TensorType(np.dtype(np.float64), (sym,)))
        out = arange(sym)
    g = Graph(inputs=[x], outputs=[out], eqns=toposort([out]), symbols={"n": (0, 0)})
    assert [e.prim for e in g.eqns] == ["iota"]
    np.testing.assert_array_equal(evaluate(g, [np.zeros(n)])[0], np.arange(n))
    f = tj.jit(lambda x: np.arange(x.shape[0]) * 2 + x.astype(np.int64))
    np.testing.assert_array_equal(f(np.ones(n)), np.arange(n) * 2 + 1)


# the float ufuncs, on inputs in (0.1, 0.9): arccosh is nan there and logical_* give bools, so they are left out
UNARY = [n for n in UNARY_UFUNCS if any(t.startswith("d->") for t in getattr(np, n).types)
         and n not in ("arccosh", "logical_not")]
BINARY = [n for n in BINARY_UFUNCS if any(t.startswith("dd->") for t in getattr(np, n).types)
          and not n.startswith("logical_")]


@pytest.mark.parametrize("name", UNARY)
def test_unary(name):
    x = R.uniform(0.1, 0.9, (4, 3))
    check(getattr(np, name), x)


@pytest.mark.parametrize("name", BINARY)
def test_binary_mapped_and_broadcast(name):
    """Batched against batched, against an unbatched operand of lower rank, and the batch on another axis."""
    f = getattr(np, name)
    x, y = R.uniform(0.5, 2, (4, 3)), R.uniform(0.5, 2, (4, 3))
    check(f, x, y)
    check(f, x, y[0], in_axes=(0, None))
    check(f, x[:, :1], y.T.copy(), in_axes=(0, 1))
    check(lambda a, b: f(a, b), x[:, 0], y, in_axes=(0, 0))  # a per-example 0-d operand against a vector


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
                                  "bitwise_xor"])
def test_bool_and_int_binary(name):
    f = getattr(np, name)
    a, b = R.integers(0, 2, (4, 3)).astype(bool), R.integers(0, 2, (4, 3)).astype(bool)
    check(f, a, b)
    check(f, a, b[0], in_axes=(0, None))
    if name.startswith("bitwise"):
        check(f, R.integers(0, 9, (4, 3)), R.integers(0, 9, (3,)), in_axes=(0, None))


def test_logical_not_invert_sigmoid_softplus_stop_gradient_convert():
    x = R.standard_normal((4, 3))
    check(np.logical_not, x > 0)
    check(np.invert, R.integers(0, 9, (4, 3)))
    check(tj.nn.sigmoid, x, rtol=1e-10)
    check(tj.nn.softplus, x, rtol=1e-10)
    check(lambda v: tj.stop_gradient(v) * 2, x)
    check(lambda v: v.astype(np.float32), x)
    check(lambda v: (v > 0).astype(np.int32) + 1, x)


def test_where_and_clip_with_mixed_batching():
    x, y = R.standard_normal((4, 3)), R.standard_normal((4, 3))
    check(lambda c, a, b: np.where(c, a, b), x > 0, y, 0.5, in_axes=(0, 0, None))
    check(lambda c, a, b: np.where(c, a, b), x[0] > 0, y, x.T.copy(), in_axes=(None, 0, 1))
    check(lambda a: np.where(a > 0, 1.0, -1.0), x)
    check(lambda a, lo: np.clip(a, lo, 0.5), x, -0.2 * np.ones(4), in_axes=(0, 0))


def test_python_scalars_and_weak_types_keep_numpy_dtypes():
    x = R.standard_normal((4, 3)).astype(np.float32)
    check(lambda a: a * 2.5 + 1, x, rtol=1e-6)
    check(lambda a: np.where(a > 0, 1.0, 2.0) + a, x, rtol=1e-6)


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min", "mean", "var", "std", "argmax", "argmin", "any",
                                  "all"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
def test_reductions(name, axis):
    if name in ("argmax", "argmin") and isinstance(axis, tuple):
        return
    x = R.standard_normal((3, 4, 2, 5))
    if name in ("any", "all"):
        x = x > 0
    check(lambda a: getattr(np, name)(a, axis=axis), x)
    check(lambda a: getattr(np, name)(a, axis=axis), x, in_axes=2)
    if name not in ("argmax", "argmin"):
        check(lambda a: getattr(np, name)(a, axis=axis, keepdims=True), x, in_axes=-1)


def test_reductions_of_per_example_scalars():
    x = R.standard_normal(5)
    for name in ["sum", "max", "argmax", "any"]:
        check(lambda a: getattr(np, name)(a), x)


def test_views():
    x = R.standard_normal((3, 4, 6))
    check(lambda a: a.reshape(2, 12), x)
    check(lambda a: a.reshape(-1), x, in_axes=1)
    check(lambda a: a.T, x)
    check(lambda a: np.transpose(a, (1, 0)), x, in_axes=2)
    check(lambda a: np.swapaxes(a, 0, 1), x, in_axes=1)
    check(lambda a: np.moveaxis(a, 0, -1), x)
    check(lambda a: np.broadcast_to(a, (2, 4, 6)), x)
    check(lambda a: np.broadcast_to(a[:, 0][:, None], (2, 3, 5)), x, in_axes=2)
    check(lambda a: a[1:, ::-2], x)
    check(lambda a: a[::2, 1], x, in_axes=1)
    check(lambda a: a[None, ..., None], x, in_axes=1)
    check(lambda a: np.expand_dims(a, 0).squeeze(0), x)
    check(lambda a: a[..., -1], x, in_axes=2)


def test_concatenate_and_stack_mixed():
    x, y = R.standard_normal((3, 4, 2)), R.standard_normal((4, 5))
    check(lambda a, b: np.concatenate([a, b], axis=1), x, y, in_axes=(0, None))
    check(lambda a, b: np.concatenate([a, b]), x, np.moveaxis(x, 2, 0), in_axes=(2, 0))
    check(lambda a, b: np.stack([a, b, a], axis=-1), x, np.moveaxis(x, 0, 2), in_axes=(0, 2))


MATMUL_CASES = [  # per-example shapes of a and b, and the axes they are batched on (None: shared)
    ((3,), (3, 4), 0, None), ((3,), (3, 4), None, 0), ((3,), (3, 4), 0, 0),
    ((2, 3), (3,), 0, None), ((2, 3), (3,), None, 0), ((2, 3), (3,), 1, 0),
    ((3,), (3,), 0, 0), ((3,), (3,), None, 1),
    ((2, 3), (3, 4), 0, 0), ((2, 3), (3, 4), 2, None), ((2, 3), (3, 4), None, 1), ((2, 3), (3, 4), 1, 2),
    ((2, 2, 3), (2, 3, 4), 0, None), ((2, 2, 3), (2, 3, 4), None, 3), ((2, 2, 3), (3, 4), 1, 0),
    ((2, 1), (1, 4), 0, 0), ((2, 1), (1, 4), None, 2),   # k == 1: an outer product
]


def _batched(shape, axis, n=5):
    if axis is None:
        return R.standard_normal(shape)
    full = list(shape)
    full.insert(axis, n)
    return R.standard_normal(full)


@pytest.mark.parametrize("sa,sb,da,db", MATMUL_CASES)
def test_matmul(sa, sb, da, db):
    a, b = _batched(sa, da), _batched(sb, db)
    check(lambda x, y: x @ y, a, b, in_axes=(da, db), rtol=1e-10)


def test_matmul_under_jit_with_symbolic_batch():
    a, b = R.standard_normal((5, 2, 3)), R.standard_normal((3, 4))
    check(lambda x, y: x @ y, a, b, in_axes=(0, None), rtol=1e-10, jit=True)
    check(lambda x, y: y.T @ x.T, a, b, in_axes=(0, None), rtol=1e-10, jit=True)
    check(lambda x, y: x @ y, a, b.T.copy()[None].repeat(5, 0).transpose(0, 2, 1), rtol=1e-10, jit=True)


def test_gather_all_batching_combinations():
    x = R.standard_normal((5, 4, 3))
    idx = R.integers(-3, 3, (5, 2))
    check(lambda a, i: a[:, i], x, idx, in_axes=(0, 0))       # both batched (offsets into each example's rows)
    check(lambda a, i: a[:, i], x, idx[0], in_axes=(0, None))
    check(lambda a, i: a[:, i], x, idx[0], in_axes=(2, None))
    check(lambda a, i: a[i], x[0], idx, in_axes=(None, 0))
    check(lambda a, i: a[:, i], x[0], idx.T.copy(), in_axes=(None, 1))   # the batch inside the index's axes
    check(lambda a, i: a[i], x[0], idx.T.copy(), in_axes=(None, 1), out_axes=-1)
    check(lambda a, i: a[i, 1], x.transpose(1, 0, 2), idx, in_axes=(1, 0))
    check(lambda a, i: a[:, i], x, idx, in_axes=(0, 0), jit=True)


def test_gather_and_scatter_with_batched_index_under_jit_across_blocks():
    """Batch lengths on both sides of arange's block of 256, one compilation for all."""
    f = tj.jit(tj.vmap(lambda a, k: a[k]))
    g = tj.jit(tj.vmap(tj.grad(lambda a, k: np.sin(a[k]))))
    for n in (6, 256, 300):
        x, i = R.standard_normal((n, 10)), R.integers(-10, 10, n)
        _same(f(x, i), x[np.arange(n), i], 1e-12)
        want = np.zeros_like(x)
        want[np.arange(n), i % 10] = np.cos(x[np.arange(n), i])
        _same(g(x, i), want, 1e-12)
    assert f.cache_info().misses == 1 and g.cache_info().misses == 1


def test_out_of_range_batched_index_still_raises():
    with pytest.raises(IndexError):
        tj.vmap(lambda a, i: a[i])(np.zeros((3, 4)), np.array([0, 4, 1]))  # 4 would be example 2's row 0


def test_scatter_add_through_gradients_of_indexing():
    x = R.standard_normal((5, 4, 3))
    idx = R.integers(-3, 3, (5, 3))

    def f(a, i):
        return np.sum(np.sin(a[:, i]) * np.arange(1.0, 4.0))
    for ax in [(0, 0), (0, None), (None, 0), (1, 0)]:
        a = x if ax[0] != 1 else np.moveaxis(x, 0, 1).copy()
        i = idx if ax[1] == 0 else idx[0]
        check(tj.grad(f), a, i, in_axes=ax, rtol=1e-10)


def test_dimsize_and_constants():
    x = R.standard_normal((4, 6))
    check(lambda a: np.sum(a) / a.shape[0], x)
    check(lambda a: np.mean(a) * a.size, x, jit=True)
    check(lambda a: np.arange(3.0) + 1, x)                 # does not depend on the example: broadcast
    check(lambda a: (np.ones(2), a * 2), x)


# ------------------------------------------------------------------------------------------------ API semantics
def test_in_axes_forms():
    x, y = R.standard_normal((3, 4)), R.standard_normal((4, 3))
    f = lambda a, b: a * b.sum()  # noqa: E731
    _same(tj.vmap(f, in_axes=(0, 1))(x, y), loop(f, x, y, in_axes=(0, 1)), 1e-12)
    _same(tj.vmap(f, in_axes=[0, -1])(x, y), loop(f, x, y, in_axes=(0, 1)), 1e-12)
    _same(tj.vmap(f, in_axes=(-2, None))(x, y), loop(f, x, y, in_axes=(0, None)), 1e-12)
    _same(tj.vmap(f, in_axes=1)(x, y.T), loop(f, x, y.T, in_axes=(1, 1)), 1e-12)


def test_pytree_inputs_outputs_and_prefix_specs():
    p = {"w": R.standard_normal((3, 2)), "b": R.standard_normal(2)}
    xs = R.standard_normal((5, 3))
    ys = (R.standard_normal((5, 2)), [R.standard_normal((2, 5))])

    def f(p, x, y):
        out = x @ p["w"] + p["b"] + y[0] * y[1][0]
        return {"out": out, "pair": (out.sum(), p["b"])}
    got = tj.vmap(f, in_axes=({"w": None, "b": None}, 0, (0, [1])),
                  out_axes={"out": 1, "pair": (0, None)})(p, xs, ys)
    want = [f(p, xs[i], (ys[0][i], [ys[1][0][:, i]])) for i in range(5)]
    _same(got["out"], np.stack([w["out"] for w in want], axis=1), 1e-12)
    _same(got["pair"][0], np.stack([w["pair"][0] for w in want]), 1e-12)
    _same(got["pair"][1], p["b"], 1e-12)
    # a leaf of in_axes applies to the whole subtree; keyword arguments are mapped over axis 0
    got = tj.vmap(lambda p, x, scale: f(p, x, (x[:2] * scale, [x[:2]])), in_axes=(None, 0))(p, xs, scale=xs[:, :2])
    want = np.stack([f(p, xs[i], (xs[i, :2] * xs[i, :2], [xs[i, :2]]))["out"] for i in range(5)])
    _same(got["out"], want, 1e-12)


def test_out_axes_forms():
    x = R.standard_normal((5, 3))
    _same(tj.vmap(lambda a: np.outer(a, a), out_axes=-1)(x), np.stack([np.outer(a, a) for a in x], -1), 1e-12)
    _same(tj.vmap(lambda a: np.outer(a, a), out_axes=1)(x), np.stack([np.outer(a, a) for a in x], 1), 1e-12)
    a, b = tj.vmap(lambda a, c: (a * 2, c + 1), in_axes=(0, None), out_axes=(1, None))(x, np.ones(3))
    _same(a, (x * 2).T, 1e-12)
    _same(b, np.full(3, 2.0), 1e-12)


def test_axis_size_with_nothing_mapped():
    c = np.arange(3.0)
    _same(tj.vmap(lambda v: v * 2, in_axes=None, axis_size=4)(c), np.tile(c * 2, (4, 1)), 1e-12)
    _same(tj.vmap(lambda v: v * 2, in_axes=None, axis_size=4, out_axes=1)(c), np.tile(c * 2, (4, 1)).T, 1e-12)
    _same(tj.jit(tj.vmap(lambda v: v * 2, in_axes=None, axis_size=4))(c), np.tile(c * 2, (4, 1)), 1e-12)
    _same(tj.vmap(lambda v: v * 2, axis_size=3)(c), c * 2, 1e-12)  # agrees with the mapped length


def test_nested_vmap():
    x, y = R.standard_normal((4, 3)), R.standard_normal((5, 3))
    dist = lambda a, b: np.sqrt(np.sum((a - b) ** 2))  # noqa: E731
    pair = tj.vmap(tj.vmap(dist, in_axes=(None, 0)), in_axes=(0, None))
    want = np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
    _same(pair(x, y), want, 1e-12)
    _same(tj.jit(pair)(x, y), want, 1e-12)
    # the inner map over a different axis of the same argument
    z = R.standard_normal((4, 5, 3))
    got = tj.vmap(tj.vmap(lambda v: v @ v, in_axes=0), in_axes=1)(z)
    _same(got, np.einsum("ijk,ijk->ji", z, z), 1e-12)


# ------------------------------------------------------------------------------------------------ with grad and jit
def _mlp_params(rng, d=6, h=5, k=3):
    return {"W1": rng.standard_normal((d, h)) * 0.5, "b1": rng.standard_normal(h) * 0.1,
            "W2": rng.standard_normal((h, k)) * 0.5, "b2": rng.standard_normal(k) * 0.1}


def mlp_loss(P, x, y, xp=np, log_softmax=None):
    h = xp.tanh(x @ P["W1"] + P["b1"])
    logits = h @ P["W2"] + P["b2"]
    return -xp.sum(y * (log_softmax or tj.nn.log_softmax)(logits, axis=-1))


def test_per_example_gradients_of_an_mlp():
    rng = np.random.default_rng(3)
    P = _mlp_params(rng)
    X, Y = rng.standard_normal((7, 6)), np.eye(3)[rng.integers(0, 3, 7)]
    pe = tj.vmap(tj.grad(mlp_loss), in_axes=(None, 0, 0))
    want = [tj.grad(mlp_loss)(P, X[i], Y[i]) for i in range(7)]
    for got in (pe(P, X, Y), tj.jit(pe)(P, X, Y)):
        for k in P:
            _same(got[k], np.stack([w[k] for w in want]), 1e-10)


def test_grad_of_vmap_is_the_sum_of_per_example_gradients():
    rng = np.random.default_rng(4)
    P = _mlp_params(rng)
    X, Y = rng.standard_normal((7, 6)), np.eye(3)[rng.integers(0, 3, 7)]
    total = tj.grad(lambda P: np.sum(tj.vmap(mlp_loss, in_axes=(None, 0, 0))(P, X, Y)))
    per = tj.vmap(tj.grad(mlp_loss), in_axes=(None, 0, 0))(P, X, Y)
    for got in (total(P), tj.jit(total)(P)):
        for k in P:
            _same(got[k], per[k].sum(0), 1e-10)


def test_vmap_of_grad_with_integer_labels_both_batched():
    """The label picks a logit per example: a gather (and a scatter-add in the gradient) whose operand and index
    are both batched."""
    rng = np.random.default_rng(5)
    P = _mlp_params(rng)
    X, lab = rng.standard_normal((7, 6)), rng.integers(0, 3, 7)

    def loss(P, x, label):
        h = np.tanh(x @ P["W1"] + P["b1"])
        return -tj.nn.log_softmax(h @ P["W2"] + P["b2"], axis=-1)[label]
    want = tj.vmap(tj.grad(mlp_loss), in_axes=(None, 0, 0))(P, X, np.eye(3)[lab])
    got = tj.jit(tj.vmap(tj.grad(loss), in_axes=(None, 0, 0)))(P, X, lab)
    for k in P:
        _same(got[k], want[k], 1e-10)


def test_jit_of_vmap_does_not_recompile_for_a_new_batch_size():
    f = tj.jit(tj.vmap(lambda a, w: np.tanh(a @ w).sum(), in_axes=(0, None)))
    w = R.standard_normal((3, 2))
    for n in (4, 9, 17):
        x = R.standard_normal((n, 3))
        _same(f(x, w), np.tanh(x @ w).sum(1), 1e-12)
    assert f.cache_info().misses == 1


def test_jax_agreement():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    rng = np.random.default_rng(6)
    P = _mlp_params(rng)
    X, Y = rng.standard_normal((8, 6)), np.eye(3)[rng.integers(0, 3, 8)]
    want = jax.jit(jax.vmap(jax.grad(lambda P, x, y: mlp_loss(P, x, y, jnp, jax.nn.log_softmax)),
                            in_axes=(None, 0, 0)))(P, X, Y)
    got = tj.jit(tj.vmap(tj.grad(mlp_loss), in_axes=(None, 0, 0)))(P, X, Y)
    for k in P:
        np.testing.assert_allclose(got[k], np.asarray(want[k]), rtol=1e-10, atol=1e-12)
    cases = [  # (tracejit function, jax function, args, in_axes, out_axes)
        (lambda a, b: np.maximum(a, b).sum(0), lambda a, b: jnp.maximum(a, b).sum(0), (X, X[:, 0]), (1, None), 0),
        (lambda a: a.T @ a, lambda a: a.T @ a, (X.reshape(8, 3, 2),), 0, -1),
        (lambda a, i: a[i], lambda a, i: a[i], (X, rng.integers(0, 6, 8)), (0, 0), 0),
        (lambda a: (a[::-1], a.max()), lambda a: (a[::-1], a.max()), (X,), 1, (1, 0)),
    ]
    for f, jf, args, ia, oa in cases:
        got = tj.vmap(f, in_axes=ia, out_axes=oa)(*args)
        want = jax.vmap(jf, in_axes=ia, out_axes=oa)(*args)
        for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12)


# ------------------------------------------------------------------------------------------------ errors
def _raises(exc, match, f, *args, **kw):
    with pytest.raises(exc, match=match):
        f(*args, **kw)


def test_inconsistent_sizes_name_the_arguments():
    def f(x, y):
        return x + y
    msg = r"vmap got inconsistent sizes for array axes to be mapped:\n  \* one axis had size 3: axis 0 of " \
          r"argument x of type float64\[3\];\n  \* one axis had size 4: axis 0 of argument y of type float64\[4\]$"
    _raises(ValueError, msg, tj.vmap(f), np.ones(3), np.ones(4))
    _raises(ValueError, r"argument x\['a'\] of type float64\[3\]", tj.vmap(f), {"a": np.ones(3)}, np.ones((5, 2)))
    _raises(ValueError, r"the `axis_size` argument was 4", tj.vmap(f, axis_size=4), np.ones(3), np.ones(3))
    _raises(ValueError, "inconsistent sizes", tj.jit(tj.vmap(f)), np.ones(3), np.ones(4))  # a run-time check


def test_in_axes_must_match_the_arguments():
    f = tj.vmap(lambda x, y: x + y, in_axes=(0,))
    _raises(ValueError, r"vmap in_axes must be an int, None, or a tuple of entries corresponding to the positional "
                        r"arguments passed to the function, but got len\(in_axes\)=1, len\(args\)=2", f,
            np.ones(3), np.ones(3))
    _raises(ValueError, "tree prefix", tj.vmap(lambda x: x, in_axes=({"a": 0},)), {"b": np.ones(3)})
    _raises(ValueError, "tree prefix", tj.vmap(lambda x: x, in_axes=((0, 0),)), (np.ones(3),))
    _raises(ValueError, "tree prefix", tj.vmap(lambda x: x, out_axes=(0,)), np.ones(3))


def test_bad_axes_and_sizes():
    _raises(ValueError, r"vmap was requested to map its argument along axis 2, which implies that its rank should "
                        r"be at least 3, but is only 2 \(its shape is \(3, 3\)\)",
            tj.vmap(lambda x: x, in_axes=2), np.ones((3, 3)))
    _raises(ValueError, r"along axis -3, which implies that its rank should be at least 3",
            tj.vmap(lambda x: x, in_axes=-3), np.ones((3, 3)))
    _raises(ValueError, r"rank should be at least 1, but is only 0", tj.vmap(lambda x: x), 1.0)
    _raises(ValueError, "vmap must have at least one non-None value in in_axes or axis_size must be specified",
            tj.vmap(lambda x, y: x, in_axes=(None, None)), np.ones(3), np.ones(3))
    _raises(ValueError, "at least one argument containing an array", tj.vmap(lambda: 1.0))
    _raises(ValueError, r"got axis spec None but output was batched on axis 0", tj.vmap(lambda x: x, out_axes=None),
            np.ones(3))
    _raises(ValueError, r"axis 2 is out of bounds for array of dimension 1", tj.vmap(lambda x: x, out_axes=2),
            np.ones(3))


def test_bad_arguments_to_vmap_itself():
    _raises(TypeError, r"vmap in_axes must be an int, None, or a tuple .* but got 0.5", tj.vmap, lambda x: x, 0.5)
    _raises(TypeError, r"\(nested\) container with those types as leaves", tj.vmap, lambda x: x, ("a",))
    _raises(TypeError, "out_axes", tj.vmap, lambda x: x, 0, 1.5)
    _raises(TypeError, "axis_size", tj.vmap, lambda x: x, 0, 0, -1)
    _raises(TypeError, "Expected a callable value, got 3", tj.vmap, 3)
    _raises(TypeError, "must return arrays", tj.vmap(lambda x: "s"), np.ones(3))


# ------------------------------------------------------------------------------------------------ random programs
UN = {"sin": np.sin, "exp": lambda v: np.exp(-np.abs(v)), "tanh": np.tanh, "sq": np.square, "neg": np.negative}
BIN = {"add": np.add, "mul": np.multiply, "sub": np.subtract, "max": np.maximum, "hyp": np.hypot}


@st.composite
def random_program(draw):
    """A straight-line program over a per-example (3, 4) input and a shared one (shape drawn to broadcast), with
    reductions, views and matmuls; plus the in_axes of the batched input."""
    shared = draw(st.sampled_from([(), (4,), (3, 1), (3, 4)]))
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["u", "b", "b", "r", "v", "m"]))
        i = draw(st.integers(0, len(steps) + 1))
        if kind == "u":
            steps.append(("u", draw(st.sampled_from(sorted(UN))), i))
        elif kind == "b":
            steps.append(("b", draw(st.sampled_from(sorted(BIN))), i, draw(st.integers(0, len(steps) + 1))))
        elif kind == "r":
            steps.append(("r", draw(st.sampled_from(["sum", "max", "mean"])), i, draw(st.sampled_from([0, 1]))))
        elif kind == "v":
            steps.append(("v", draw(st.sampled_from(["rev", "T2", "bcast", "flat", "cat"])), i))
        else:
            steps.append(("m", None, i))
    return shared, steps, draw(st.sampled_from([0, 1, 2, -1])), draw(st.sampled_from([0, 1, -1]))


def run_program(steps, a, b):
    vals = [a, b]
    W = np.linspace(-1, 1, 16).reshape(4, 4)
    for s in steps:
        x = np.broadcast_to(vals[s[2]], (3, 4)) * 1.0
        if s[0] == "u":
            y = UN[s[1]](x)
        elif s[0] == "b":
            y = BIN[s[1]](x, vals[s[3]])
        elif s[0] == "r":
            y = getattr(np, s[1])(x, axis=s[3], keepdims=True)
        elif s[0] == "m":
            y = x @ W
        elif s[1] == "rev":
            y = np.concatenate([x[::-1, ::2], x[:, 1::2]], axis=1)
        elif s[1] == "T2":
            y = (x.T * 1.5).T
        elif s[1] == "flat":
            y = x.reshape(-1)[::-1].reshape(3, 4)
        elif s[1] == "cat":
            y = np.concatenate([x, vals[0]], axis=0)[1:4]
        else:
            y = np.broadcast_to(x[:1], (3, 4)) * 1.0
        vals.append(y)
    return vals[-1] + np.sum(vals[0]) * 0.1


@settings(max_examples=30)
@given(random_program(), st.integers(0, 2 ** 31 - 1))
def test_random_programs_against_a_loop(program, seed):
    shared, steps, in_axis, out_axis = program
    rng = np.random.default_rng(seed)
    a = np.moveaxis(rng.uniform(-1.5, 1.5, (5, 3, 4)), 0, in_axis)
    b = rng.uniform(-1.5, 1.5, shared)
    f = lambda a, b: run_program(steps, a, b)  # noqa: E731
    got = tj.vmap(f, in_axes=(in_axis, None), out_axes=out_axis)(a, b)
    want = np.stack([f(np.take(a, i, axis=in_axis), b) for i in range(5)], axis=out_axis)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the same program batched over both inputs, and gradients of the batched program
    bb = np.broadcast_to(b, (5,) + b.shape) * 1.0
    got = tj.vmap(f, in_axes=(in_axis, 0))(a, bb)
    want = np.stack([f(np.take(a, i, axis=in_axis), bb[i]) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    g = tj.vmap(tj.grad(lambda a, b: np.sum(f(a, b))), in_axes=(in_axis, None))(a, b)
    gl = np.stack([tj.grad(lambda a, b: np.sum(f(a, b)))(np.take(a, i, axis=in_axis), b) for i in range(5)])
    np.testing.assert_allclose(g, gl, rtol=1e-12, atol=1e-12)
