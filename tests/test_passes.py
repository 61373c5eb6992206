"""The rewrite passes: each rewrite fires where it is right, stays put where it would be wrong (shapes,
broadcasting, integers, strict_ieee), every pass is idempotent, and random programs still match numpy."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.ir import ops
from tracejit.ir.graph import Graph, Value, toposort
from tracejit.ir.interpret import evaluate
from tracejit.ir.types import Dim, TensorType
from tracejit.passes import patterns
from tracejit.passes.cse import cse
from tracejit.passes.pipeline import PASSES, optimize, optimize_with_log
from tracejit.passes.fold import fold
from tracejit.passes.simplify import simplify

X = np.linspace(0.5, 2.0, 6)
X32 = X.astype(np.float32)
M = np.linspace(0.5, 2.0, 12).reshape(3, 4)
I32 = np.arange(-3, 3, dtype=np.int32)


def ir(f, *args, **kw):
    return tj.make_ir(f, **kw)(*args)


def ops_of(f, *args, **kw):
    return ir(f, *args, **kw).ops


def same_numbers(f, *args, strict_ieee=False, rtol=1e-12):
    got = tj.jit(f, strict_ieee=strict_ieee)(*args)
    with np.errstate(all="ignore"):
        want = f(*args)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.asarray(got).shape == np.asarray(want).shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12)


# ------------------------------------------------------------------------------------------------ simplify fires
FIRES = [
    ("double negation", lambda x: -(-x), []),
    ("x + y - x", lambda x: x + np.exp(x) - x, ["exp"]),
    ("x * y / x", lambda x: x * np.exp(x) / x, ["exp"]),
    ("x * 1", lambda x: x * 1.0, []),
    ("x + 0", lambda x: x + 0.0, []),
    ("x - 0", lambda x: x - 0.0, []),
    ("x / 1", lambda x: x / 1.0, []),
    ("x ** 1", lambda x: x ** 1, []),
    ("x ** 2", lambda x: x ** 2, ["square"]),
    ("x ** 0.5", lambda x: x ** 0.5, ["sqrt"]),
    ("exp(log(x))", lambda x: np.exp(np.log(x)), []),
    ("log(exp(x))", lambda x: np.log(np.exp(x)), []),
    ("-(a - b)", lambda x: -(x - np.exp(x)), ["exp", "subtract"]),
    ("x / c", lambda x: x / 3.0, ["multiply"]),
    ("2x + 3x", lambda x: 2 * x + 3 * x, ["multiply"]),
    ("x + x - x", lambda x: x + x - x, []),
    ("constants merge", lambda x: (x + 1.0) + 2.0, ["add"]),
    ("2 * (3 * x)", lambda x: 2.0 * (3.0 * x), ["multiply"]),
    ("x * x", lambda x: x * x, ["square"]),
    ("x * x / x", lambda x: x * x / x, []),
    ("where(c, x, x)", lambda x: np.where(x > 1, np.exp(x), np.exp(x)), ["exp"]),
]


@pytest.mark.parametrize("name,f,expected", FIRES, ids=[c[0] for c in FIRES])
def test_simplify_fires(name, f, expected):
    assert ops_of(f, X) == expected
    same_numbers(f, X)


def test_self_difference_is_zero_of_the_right_shape_and_dtype():
    g = ir(lambda x: x - x, X32)
    assert "subtract" not in g.ops
    out = tj.jit(lambda x: x - x)(X32)
    assert out.dtype == np.float32 and out.shape == X32.shape and not out.any()


def test_double_transpose_and_reshape_disappear():
    assert ops_of(lambda m: m.T.T, M) == []
    assert ops_of(lambda m: m.reshape(-1).reshape(m.shape[0], m.shape[1]), M) == []
    t3 = np.arange(24.0).reshape(2, 3, 4)
    f = lambda t: np.transpose(np.transpose(t, (1, 0, 2)), (2, 0, 1))  # noqa: E731
    assert ops_of(f, t3) == ["transpose"]
    same_numbers(f, t3)


def test_transposed_matmul():
    a, b = np.arange(12.0).reshape(3, 4), np.arange(15.0).reshape(5, 3)
    f = lambda a, b: (a.T @ b.T).T  # noqa: E731
    assert ops_of(f, a, b) == ["matmul"]
    same_numbers(f, a, b)
    g = lambda a, b: (b @ a).T  # noqa: E731  (no transposed operand: a transpose has to stay)
    assert ops_of(g, a, b).count("transpose") == 1
    same_numbers(g, a, b)


def test_sum_of_broadcast_is_a_multiply():
    f = lambda x: np.sum(np.broadcast_to(x, (3,) + x.shape), axis=0)  # noqa: E731
    assert "sum" not in ops_of(f, X)
    same_numbers(f, X)
    col = np.arange(4.0).reshape(4, 1)
    h = lambda c: np.sum(np.broadcast_to(c, (4, 5)), axis=(0, 1))  # noqa: E731  own axis summed, copies multiplied
    assert ops_of(h, col).count("broadcast_to") == 0
    same_numbers(h, col)
    i = lambda x: np.sum(np.broadcast_to(x, (3,) + x.shape), axis=0)  # noqa: E731
    out = tj.jit(i)(I32)
    assert out.dtype == np.int32 or out.dtype == np.sum(np.broadcast_to(I32, (3, 6)), axis=0).dtype
    np.testing.assert_array_equal(out, i(I32))


def test_sum_over_own_axis_of_broadcast_keeps_the_sum():
    f = lambda x: np.sum(np.broadcast_to(x, (3,) + x.shape), axis=1)  # noqa: E731
    assert "sum" in ops_of(f, X)
    same_numbers(f, X)


# ------------------------------------------------------------------------------------------------ must not fire
def test_cancellation_across_broadcasting_keeps_the_shape():
    y = np.arange(4.0)
    f = lambda m, y: m + y - m  # noqa: E731  the result has m's shape, not y's
    g = ir(f, M, y)
    assert g.ops == ["broadcast_to"] and g.outputs[0].shape[0] == g.inputs[0].shape[0]
    same_numbers(f, M, y)


def test_strict_ieee_turns_off_the_ieee_rewrites():
    cases = [lambda x: x - x, lambda x: x + np.exp(x) - x, lambda x: x * np.exp(x) / x, lambda x: x * 0.0,
             lambda x: x + 0.0, lambda x: np.exp(np.log(x)), lambda x: np.log(np.exp(x)),
             lambda x: -(x - np.exp(x)), lambda x: x / 3.0, lambda x: (x * 1e300) * 1e-300]
    for f in cases:
        plain, strict = ops_of(f, X), ops_of(f, X, strict_ieee=True)
        assert len(strict) > len(plain) or (strict != plain), strict
        same_numbers(f, X, strict_ieee=True)
    inf = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    for f in cases:
        got = tj.jit(f, strict_ieee=True)(inf)
        with np.errstate(all="ignore"):
            want = f(inf)
            np.testing.assert_array_equal(got, want)  # nan where numpy has nan, same infinities
            np.testing.assert_array_equal(np.signbit(got[want == 0]), np.signbit(want[want == 0]))  # signed zeros


def test_strict_ieee_keeps_exact_rewrites():
    assert ops_of(lambda x: x / 4.0, X, strict_ieee=True) == ["multiply"]  # 1/4 is exact
    assert ops_of(lambda x: x * 1.0 - 0.0, X, strict_ieee=True) == []
    assert ops_of(lambda x: -(-x), X, strict_ieee=True) == []
    assert ops_of(lambda x: x + x, X, strict_ieee=True) == ["add"]


def test_integer_rules():
    # exact for integers, so on even with strict_ieee
    assert ops_of(lambda i: i - i, I32, strict_ieee=True) in ([], ["broadcast_to"])
    assert ops_of(lambda i: i * 0, I32, strict_ieee=True) in ([], ["broadcast_to"])
    assert ops_of(lambda i: i + 0, I32, strict_ieee=True) == []
    assert ops_of(lambda i: 2 * i + 3 * i, I32) == ["multiply"]
    np.testing.assert_array_equal(tj.jit(lambda i: 2 * i + 3 * i)(I32), 5 * I32)
    # float rules that differ for integers
    assert "floor_divide" in ops_of(lambda i: i * 3 // 3, I32)
    assert "divide" in ops_of(lambda i: i / 3, I32)  # 6 / 3 must stay exactly 2.0
    same_numbers(lambda i: i / 3, I32, rtol=0)
    assert "divide" in ops_of(lambda i: i / i, I32)  # 0 / 0 is nan, not 1
    same_numbers(lambda i: i / i, I32)
    b = np.array([True, False])
    assert tj.jit(lambda b: b + False)(b).dtype == np.bool_


def test_weak_scalar_types_are_kept():
    builder = ops.Builder()
    with builder:
        two = ops.constant(2.0, weak=True)
        w = ops.ufunc("multiply", ops.ufunc("add", two, ops.constant(0.0, weak=True)), ops.constant(1.0, weak=True))
        x = ops.constant(np.float32(3.0))
        y = ops.ufunc("add", x, two)
        g = Graph([], [w, y], toposort([w, y]))
    assert w.type.weak
    for name in ("simplify", "fold"):
        out = PASSES[name](g, stats={})
        assert out.outputs[0].type == w.type
    out = optimize(g)
    assert out.outputs[0].type.weak and out.outputs[0].dtype == np.float64
    assert out.outputs[1].dtype == np.float32


def test_no_rewrite_changes_a_type():
    f = lambda x: (x.reshape(x.shape[0], 1) + np.zeros(3) - x.reshape(x.shape[0], 1)) * 1.0  # noqa: E731
    g = ir(f, X32)
    t = tj.make_ir(f, optimize=False)(X32)
    assert g.outputs[0].type == t.outputs[0].type
    same_numbers(f, X32, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ folding, cse
def _graph(fn, *shapes):
    """A Graph built directly with ops (constants stay constants; nothing is evaluated by numpy at trace time)."""
    ins = [Value(TensorType(np.dtype(np.float64), s)) for s in shapes]
    with ops.Builder():
        outs = fn(*ins)
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
    return Graph(ins, outs, toposort(outs))


def test_constant_folding():
    c = np.arange(3.0)

    def fn(x):
        k = ops.ufunc("multiply", ops.ufunc("exp", ops.constant(c)), ops.constant(2.0))
        s = ops.reduce("sum", ops.ufunc("sqrt", ops.constant(c)))
        return ops.ufunc("add", ops.ufunc("add", x, k), s)
    g = _graph(fn, (3,))
    assert g.ops == ["exp", "multiply", "add", "sqrt", "sum", "add"]
    folded = fold(g, stats={})
    assert folded.ops == ["add", "add"]
    x = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(evaluate(folded, [x])[0], x + np.exp(c) * 2 + np.sum(np.sqrt(c)), rtol=1e-15)


def test_large_folded_constants_are_shared():
    def fn(x):  # two equal large constants (distinct arrays), each through exp: one folded constant, one multiply
        e1 = ops.ufunc("exp", ops.constant(np.arange(100.0)))
        e2 = ops.ufunc("exp", ops.constant(np.arange(100.0)))
        return ops.ufunc("add", ops.ufunc("multiply", x, e1), ops.ufunc("multiply", x, e2))
    g = _graph(fn, (100,))
    out = optimize(g)
    big = [v for v in out.constants() if v.const.size > 64]
    assert len(big) == 1 and out.ops.count("multiply") == 1
    x = np.linspace(0, 1, 100)
    np.testing.assert_allclose(evaluate(out, [x])[0], 2 * x * np.exp(np.arange(100.0)), rtol=1e-14)


def test_fold_leaves_broadcasts_and_symbolic_shapes():
    n = Dim.symbol("n")
    g = _graph(lambda x: ops.ufunc("add", x, ops.broadcast_to(ops.constant(2.0), (n,))), (n,))
    assert fold(g, stats={}).ops == ["broadcast_to", "add"]
    g = _graph(lambda x: ops.ufunc("add", x, ops.broadcast_to(ops.constant(2.0), (1000,))), (1000,))
    assert "broadcast_to" in fold(g, stats={}).ops


def test_cse_merges_equal_subgraphs():
    assert ops_of(lambda x: np.exp(x) + np.exp(x), X).count("exp") == 1
    # graphs built outside one hash-cons table: CSE merges them, commutative operands in any order
    xin = Value(TensorType(np.dtype(np.float64), (3,)))
    yin = Value(TensorType(np.dtype(np.float64), (3,)))
    with ops.Builder():
        a = ops.ufunc("add", ops.ufunc("exp", xin), yin)
    with ops.Builder():
        b = ops.ufunc("add", yin, ops.ufunc("exp", xin))
    with ops.Builder():
        out = ops.ufunc("multiply", a, b)
    g = Graph([xin, yin], [out], toposort([out]))
    assert g.ops.count("exp") == 2
    merged = cse(g, stats={})
    assert merged.ops == ["exp", "add", "multiply"]


# ------------------------------------------------------------------------------------------------ pipeline
SAMPLES = [
    (lambda x: x + np.exp(x) - x * 1.0, X),
    (lambda x: np.log(1 + np.exp(x)) + 1 / (1 + np.exp(-x)), X),
    (lambda x: -(-(x - 2.0 * x)) / 3.0 + x ** 2 + x ** 0.5, X),
    (lambda m: np.sum(np.broadcast_to(m, (2,) + m.shape), axis=0).T.T, M),
    (lambda x: np.log(np.exp(x - np.max(x)) / np.sum(np.exp(x - np.max(x)))), X),
    (lambda x: np.sqrt(x ** 2) + np.exp(x) - 1, X32),
]


@pytest.mark.parametrize("name", list(PASSES))
@pytest.mark.parametrize("case", range(len(SAMPLES)))
def test_every_pass_is_idempotent(name, case):
    f, x = SAMPLES[case]
    g = tj.make_ir(f, optimize=False)(x)
    once = PASSES[name](g, stats={})
    twice = PASSES[name](once, stats={})
    assert str(twice) == str(once)
    full = optimize(g)
    assert optimize(full).ops == full.ops


def test_pipeline_subsets_and_log():
    f = lambda x: np.log(1 + np.exp(x)) * 1.0  # noqa: E731
    assert ops_of(f, X, passes=["stabilize"]) == ["softplus", "multiply"]
    assert ops_of(f, X, passes=["canonicalize"]) == ["exp", "add", "log"]
    assert ops_of(f, X, passes=[]) == ["exp", "add", "log", "multiply"]
    with pytest.raises(ValueError, match="unknown pass 'nope'"):
        ops_of(f, X, passes=["nope"])
    _, log = optimize_with_log(tj.make_ir(f, optimize=False)(X))
    assert any(r.changes.get("log_of_one_plus_exp") for r in log)
    lowered = tj.jit(f).lower(X)
    assert "softplus" in lowered.as_text("optimized")


# ------------------------------------------------------------------------------------------------ random programs
UNARY = ["negative", "exp", "log", "square", "sqrt"]
BINARY = ["add", "subtract", "multiply", "divide", "maximum", "where"]


def expressions():
    leaf = st.one_of(st.just(("x",)), st.sampled_from([0.0, 1.0, 2.0, 0.5, -1.0, 3.0]).map(lambda c: ("c", c)))

    def extend(children):
        return st.one_of(st.tuples(st.sampled_from(UNARY), children),
                         st.tuples(st.sampled_from(BINARY), children, children))
    return st.recursive(leaf, extend, max_leaves=12)


def build(expr, x, scale):
    """Evaluate expr over x (an array or a tracer); log/sqrt/divide/exp get safe domains."""
    op = expr[0]
    if op == "x":
        return x
    if op == "c":
        return x.dtype.type(expr[1])  # a numpy scalar of x's dtype (numpy makes ufuncs of Python floats strong)
    a = build(expr[1], x, scale)
    if op == "negative":
        out = -a
    elif op == "exp":
        out = np.exp(-np.maximum(a, -4.0))
    elif op == "log":
        out = np.log(np.square(a) + 0.5)
    elif op == "sqrt":
        out = np.sqrt(np.square(a) + 0.25)
    elif op == "square":
        out = np.square(a)
    else:
        b = build(expr[2], x, scale)
        if op == "add":
            out = a + b
        elif op == "subtract":
            out = a - b
        elif op == "multiply":
            out = a * b
        elif op == "divide":
            out = a / (np.square(b) + 0.5)
        elif op == "maximum":
            out = np.maximum(a, b)
        else:
            out = np.where(a > b, a, b * 2.0)
    if isinstance(out, np.ndarray):
        scale.append(float(np.max(np.abs(out))))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(expressions(), st.sampled_from([np.float32, np.float64]), st.integers(0, 3))
def test_random_expressions_match_numpy(expr, dtype, seed):
    x = np.random.default_rng(seed).uniform(0.25, 2.0, size=7).astype(dtype)
    scale = [1.0]
    f = lambda x: build(expr, x, scale) + np.zeros_like(x)  # noqa: E731
    with np.errstate(all="ignore"):
        want = f(x)
    assume(np.all(np.isfinite(want)) and max(scale) < 1e6)
    got = tj.jit(f)(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    tol = (3e-4 if dtype == np.float32 else 1e-10) * max(scale)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_every_pass_is_idempotent_on_random_programs(expr, dtype, strict):
    x = np.linspace(0.5, 2.0, 7).astype(dtype)
    g = tj.make_ir(lambda x: build(expr, x, []) + np.exp(x), optimize=False)(x)
    for name, run in PASSES.items():
        once = run(g, strict_ieee=strict, stats={})
        assert str(run(once, strict_ieee=strict, stats={})) == str(once), name
    full = optimize(g, strict_ieee=strict)
    assert str(optimize(full, strict_ieee=strict)) == str(full)


def benchmark_program(steps, seed):
    """The random program of benchmarks/passes_scaling.py (the rewrites' patterns, shared subexpressions)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "passes_scaling.py"
    spec = importlib.util.spec_from_file_location("passes_scaling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tj.make_ir(module.chain(steps, seed), optimize=False)(M, M)


def view_program(steps, seed):
    """A random program of square matrices over the view, matmul and stability patterns, values shared."""
    rng = np.random.default_rng(seed)
    forms = [lambda a, b: (a.T @ b.T).T, lambda a, b: a.T.T + b, lambda a, b: a.reshape(2, 8).reshape(4, 4) * b,
             lambda a, b: np.sum(np.broadcast_to(a, (2, 4, 4)), axis=0) - b, lambda a, b: np.log(1 + np.exp(a - b)),
             lambda a, b: 1 / (1 + np.exp(-a)) + np.log(1 - 1 / (1 + np.exp(-b))), lambda a, b: np.log1p(np.exp(a)),
             lambda a, b: np.log(np.exp(a) / np.sum(np.exp(b), axis=1, keepdims=True)), lambda a, b: np.exp(a) - 1,
             lambda a, b: np.sqrt(np.square(a)) + b ** 2.0, lambda a, b: np.where(a > b, a, a) / 2.0,
             lambda a, b: np.log(np.sum(np.exp(a), axis=0)) + b, lambda a, b: -(a - b) * 1.0 + 0.0]

    def f(x, y):
        vals = [x, y]
        for _ in range(steps):
            a, b = (vals[rng.integers(len(vals))] for _ in range(2))
            vals.append(forms[rng.integers(len(forms))](a, b))
        return sum(vals[-6:])
    square = np.linspace(0.5, 2.0, 16).reshape(4, 4)
    return tj.make_ir(f, optimize=False)(square, square.T)


def test_values_not_offered_again_are_declined_by_every_rule(monkeypatch):
    """The driver does not offer a value its rules again once they all declined it, nor a copy of it far from
    every rewrite (nor, in the next pass, one the same rules declined before): each such skip is checked here
    against the rules themselves."""
    skipped = []
    is_settled = patterns._is_settled

    def checked(v, ctx):
        if not is_settled(v, ctx):
            return False
        with patterns._Scratch(ops.current()):
            fired = [r.__name__ for r in ctx.rules[v.eqn.prim] if patterns._candidate(r, v, ctx) is not None]
        assert not fired, (fired, v)
        skipped.append(v)
        return True

    monkeypatch.setattr(patterns, "_is_settled", checked)
    programs = [benchmark_program(150, 0), benchmark_program(600, 1), view_program(150, 0), view_program(150, 1)]
    for g in programs:
        for strict in (False, True):
            once = optimize(g, strict_ieee=strict)
            assert optimize(once, strict_ieee=strict).ops == once.ops
    assert len(skipped) > 1000


# ------------------------------------------------------------------------------------------------ plan invariants
def _kernels_read_nothing_they_write(plan):
    """No kernel reads (from memory) a buffer that its own stores write: the reads would run before the store."""
    from tracejit.lower.plan import Kernel, memory_access
    for k in plan.steps:
        if not isinstance(k, Kernel):
            continue
        produced = {o.eqn.out.id for o in k.ops}
        read = set()
        for o in k.ops:
            for x in o.eqn.inputs:
                acc = memory_access(plan.sources.get(x.id))
                if x.id not in produced and acc is not None:
                    read.add(acc.buf)
        written = {acc.buf for _, acc in k.stores}
        assert not read & written, (k, read & written)


@pytest.mark.parametrize("fun", [
    lambda a: (np.broadcast_to(0.0, (1, 1)) * np.sign(a), np.broadcast_to(0.0, (1, 1))),
    lambda a: (np.broadcast_to(2.0, (3, 4)) + a, np.broadcast_to(2.0, (3, 4))),
    lambda a: (a * 3 + np.broadcast_to(1.5, (1, 1)), np.exp(a).sum(), np.broadcast_to(1.5, (1, 1))),
])
def test_a_materialized_scalar_is_written_before_any_kernel_reads_it(fun):
    """A scalar broadcast and returned was stored at the end of the kernel that also read it (issue 12's probe:
    grad of var over a length-1 axis returned nan from the second call on)."""
    from tracejit.lower.fuse import plan
    for a in (np.array([[0.7]]), np.full((3, 4), 0.7)):
        lo = tj.jit(fun).lower(a)
        _kernels_read_nothing_they_write(plan(lo.optimized))
        f = tj.jit(fun)
        want = fun(a)
        for _ in range(4):  # later calls run on recycled (dirty) buffers
            for got, w in zip(f(a), want):
                np.testing.assert_allclose(got, w, rtol=1e-13)


def test_grad_of_variance_over_a_length_one_axis_is_zero_on_every_call():
    from tracejit.lower.fuse import plan
    f = tj.jit(tj.grad(lambda a, b: np.sum(np.var(np.abs(a) + b, axis=0)), argnums=(0, 1)))
    _kernels_read_nothing_they_write(plan(f.lower(np.array([[0.7]]), np.array([[0.3]])).optimized))
    for _ in range(4):
        ga, gb = f(np.array([[0.7]]), np.array([[0.3]]))
        assert ga == 0 and gb == 0
