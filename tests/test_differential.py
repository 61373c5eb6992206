"""Differential tests: random numpy programs run by tracejit and by numpy must agree.

A program is a list of steps over a growing list of values (the inputs first). Each step is plain data, so
hypothesis can shrink it; ``run`` interprets it with numpy's own functions, which is why the same Python
function works on arrays (the reference) and on tracers (under ``tj.jit``). Steps that numpy itself rejects for
the dtypes or shapes at hand (a TypeError, a ValueError, a dtype tracejit does not support) are dropped before
the comparison, so every compared program is one numpy runs.
"""
from __future__ import annotations

import numpy as np
from hypothesis import assume, given, note, strategies as st

import tracejit as tj

DTYPES = [np.bool_, np.int32, np.int64, np.float32, np.float64]
SUPPORTED = {np.dtype(d) for d in DTYPES}
LENGTHS = [0, 1, 2, 3, 5]

UNARY = ["negative", "absolute", "square", "sqrt", "exp", "log", "log1p", "expm1", "sin", "cos", "tanh",
         "arctan", "floor", "ceil", "rint", "sign", "cbrt", "reciprocal", "isnan", "isfinite", "logical_not",
         "invert"]
BINARY = ["add", "subtract", "multiply", "divide", "floor_divide", "remainder", "power", "maximum", "minimum",
          "fmax", "fmin", "arctan2", "hypot", "logaddexp", "equal", "less", "greater_equal", "logical_and",
          "logical_xor", "bitwise_and", "bitwise_or"]
REDUCTIONS = ["sum", "prod", "mean", "max", "min", "any", "all", "argmax", "argmin", "var", "std"]
VIEWS = ["T", "reverse0", "reverse_last", "step2", "newaxis", "ravel", "squeeze", "swap", "broadcast", "index0",
         "take"]
SCALARS = [2, -1, 0.5, 3.0, True]


# ------------------------------------------------------------------------------------------------ the interpreter
def _view(kind, x):
    if kind == "T":
        return x.T
    if kind == "reverse0":
        return x[::-1] if x.ndim else x
    if kind == "reverse_last":
        return x[..., ::-1] if x.ndim else x
    if kind == "step2":
        return x[1::2] if x.ndim else x
    if kind == "newaxis":
        return x[:, None] if x.ndim else x[None]
    if kind == "ravel":
        return x.ravel()
    if kind == "squeeze":
        return np.squeeze(x)
    if kind == "swap":
        return np.swapaxes(x, 0, -1) if x.ndim else x
    if kind == "broadcast":
        return np.broadcast_to(x, (2,) + tuple(x.shape))
    if kind == "index0":
        return x[0] if x.ndim else x
    if kind == "take":
        return x[np.array([0, -1, 0])] if x.ndim else x
    raise AssertionError(kind)


def apply_step(step, vals):
    kind = step[0]
    if kind == "unary":
        return getattr(np, step[1])(vals[step[2]])
    if kind == "binary":
        return getattr(np, step[1])(vals[step[2]], vals[step[3]])
    if kind == "scalar":  # a Python scalar on either side (weak promotion, reflected operators)
        _, name, i, c, left = step
        ops = {"add": lambda a, b: a + b, "multiply": lambda a, b: a * b, "subtract": lambda a, b: a - b,
               "divide": lambda a, b: a / b, "maximum": np.maximum, "less": lambda a, b: a < b}
        return ops[name](c, vals[i]) if left else ops[name](vals[i], c)
    if kind == "reduce":
        _, name, i, axis, keepdims = step
        x = vals[i]
        ax = None if axis is None or x.ndim == 0 else axis % x.ndim
        if name in ("argmax", "argmin"):
            return getattr(np, name)(x, axis=ax, keepdims=keepdims)
        return getattr(np, name)(x, axis=ax, keepdims=keepdims)
    if kind == "where":
        _, c, i, j = step
        cond = vals[c]
        return np.where(cond if cond.dtype == np.bool_ else cond > 0, vals[i], vals[j])
    if kind == "view":
        return _view(step[1], vals[step[2]])
    if kind == "cast":
        return vals[step[2]].astype(step[1])
    raise AssertionError(kind)


def run(program, outputs, args):
    vals = list(args)
    for step in program:
        vals.append(apply_step(step, vals))
    return tuple(vals[o] for o in outputs)


def prune(program, args):
    """Keep the steps numpy accepts with supported result dtypes; renumber the values they refer to."""
    vals = [np.asarray(a) for a in args]
    kept, where = [], list(range(len(args)))  # where[k]: index of original value k in the kept list (or None)
    for step in program:
        remap = _remap(step, where)
        if remap is None:
            where.append(None)
            continue
        try:
            with np.errstate(all="ignore"):
                out = np.asarray(apply_step(remap, vals))
        except (TypeError, ValueError, IndexError):
            where.append(None)
            continue
        if out.dtype not in SUPPORTED or out.size > 4000:
            where.append(None)
            continue
        vals.append(out)
        kept.append(remap)
        where.append(len(vals) - 1)
    return kept, vals


def _remap(step, where):
    refs = {"unary": (2,), "binary": (2, 3), "scalar": (2,), "reduce": (2,), "where": (1, 2, 3), "view": (2,),
            "cast": (2,)}[step[0]]
    step = list(step)
    for r in refs:
        k = step[r] % len(where)
        if where[k] is None:
            return None
        step[r] = where[k]
    return tuple(step)


# ------------------------------------------------------------------------------------------------ strategies
@st.composite
def arrays(draw, shape):
    """An array of ``shape`` with a random dtype and layout (C-contiguous, transposed or sliced)."""
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(["C", "T", "slice", "reverse"]))
    size = int(np.prod(shape))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    if dtype is np.bool_:
        make = lambda s: rng.random(s) > 0.5  # noqa: E731
    elif np.dtype(dtype).kind == "i":
        make = lambda s: rng.integers(-4, 5, size=s).astype(dtype)  # noqa: E731
    else:
        special = draw(st.booleans())
        def make(s):
            a = (rng.standard_normal(s) * 2).astype(dtype)
            if special and a.size:
                a.flat[rng.integers(0, a.size)] = rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan])
            return a
    if layout == "T" and len(shape) >= 2:
        return make(shape[::-1]).T
    if layout == "slice" and len(shape) >= 1:
        return make((shape[0] * 2,) + tuple(shape[1:]))[::2]
    if layout == "reverse" and len(shape) >= 1:
        return make(shape)[::-1]
    _ = size
    return make(shape)


@st.composite
def inputs(draw, max_inputs=3):
    rank = draw(st.integers(0, 3))
    full = tuple(draw(st.lists(st.sampled_from(LENGTHS), min_size=rank, max_size=rank)))
    n = draw(st.integers(1, max_inputs))
    out = []
    for _ in range(n):
        r = draw(st.integers(0, rank))
        shape = tuple(1 if draw(st.integers(0, 4)) == 0 else d for d in full[rank - r:])
        out.append(draw(arrays(shape)))
    return out


def steps(n_values, allow=("unary", "binary", "scalar", "reduce", "where", "view", "cast")):
    i = st.integers(0, 64)  # taken modulo the number of values so far
    options = {
        "unary": st.tuples(st.just("unary"), st.sampled_from(UNARY), i),
        "binary": st.tuples(st.just("binary"), st.sampled_from(BINARY), i, i),
        "scalar": st.tuples(st.just("scalar"), st.sampled_from(["add", "multiply", "subtract", "divide", "maximum",
                                                                 "less"]), i, st.sampled_from(SCALARS),
                            st.booleans()),
        "reduce": st.tuples(st.just("reduce"), st.sampled_from(REDUCTIONS), i,
                            st.one_of(st.none(), st.integers(-3, 2)), st.booleans()),
        "where": st.tuples(st.just("where"), i, i, i),
        "view": st.tuples(st.just("view"), st.sampled_from(VIEWS), i),
        "cast": st.tuples(st.just("cast"), st.sampled_from(["float32", "float64", "int32", "int64", "bool"]), i),
    }
    return st.one_of([options[k] for k in allow])


# ------------------------------------------------------------------------------------------------ comparison
def assert_matches(got, expected, scale, what):
    assert isinstance(got, np.ndarray), f"{what}: got {type(got).__name__}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != numpy's {expected.shape}"
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != numpy's {expected.dtype}"
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    # composite float programs amplify rounding differences (cancellation): the tolerance is relative to the
    # largest intermediate magnitude, tight enough to catch a wrong element, a wrong axis or a wrong dtype.
    rtol = 1e-3 if expected.dtype == np.float32 else 1e-9
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: nan positions")
    fin = np.isfinite(expected)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(expected)], expected[~fin & ~np.isnan(expected)],
                                  err_msg=f"{what}: infinities")
    np.testing.assert_allclose(got[fin], expected[fin], rtol=rtol, atol=rtol * scale, err_msg=what)


def _scale(vals):
    m = 1.0
    for v in vals:
        if v.dtype.kind == "f" and v.size:
            fin = np.abs(v[np.isfinite(v)])
            if fin.size:
                m = max(m, float(fin.max()))
    return m


def check_program(args, program, n_out, data):
    kept, vals = prune(program, args)
    assume(kept)
    n = len(vals)
    outputs = [n - 1] + [data.draw(st.integers(len(args), n - 1)) for _ in range(n_out - 1)]
    note(f"inputs: {[(a.dtype, a.shape, a.strides) for a in args]}")
    note(f"program: {kept}  outputs: {outputs}")

    def f(*xs):
        return run(kept, outputs, xs)

    with np.errstate(all="ignore"):
        expected = f(*args)
        got = tj.jit(f)(*args)
    assert isinstance(got, tuple) and len(got) == len(expected)
    scale = _scale(vals)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_matches(g, np.asarray(e), scale, f"output {k}")


# ------------------------------------------------------------------------------------------------ the tests
@given(inputs(), st.data())
def test_random_elementwise_programs(args, data):
    program = data.draw(st.lists(steps(len(args), ("unary", "binary", "scalar", "where", "cast")), min_size=1,
                                 max_size=6))
    check_program(args, program, data.draw(st.integers(1, 2)), data)


@given(inputs(), st.data())
def test_random_programs_with_reductions_and_views(args, data):
    program = data.draw(st.lists(steps(len(args)), min_size=1, max_size=7))
    check_program(args, program, data.draw(st.integers(1, 3)), data)


@given(inputs(max_inputs=2), st.data())
def test_random_programs_reuse_across_lengths(args, data):
    """One compiled program, called again with other lengths of the same signature, still matches numpy."""
    program = data.draw(st.lists(steps(len(args), ("unary", "binary", "reduce", "view")), min_size=1, max_size=4))
    kept, vals = prune(program, args)
    assume(kept)

    def f(*xs):
        return run(kept, [len(vals) - 1], xs)

    jf = tj.jit(f)
    with np.errstate(all="ignore"):
        for a in (args, [_resize(x) for x in args]):
            try:
                expected = f(*a)
            except (ValueError, IndexError):
                continue  # numpy rejects the new lengths (e.g. max of an empty axis)
            note(f"program: {kept} inputs: {[(x.dtype, x.shape) for x in a]}")
            got = jf(*a)
            assert_matches(got[0], np.asarray(expected[0]), _scale([np.asarray(expected[0])] + list(a)), "output")
    assert jf.cache_info().misses <= 2


def _resize(x):
    """The same signature (dtype, rank, size-1 dims, contiguity) with other lengths."""
    shape = tuple(1 if d == 1 else (d + 2 if d != 3 else 7) for d in x.shape)
    big = np.resize(np.ascontiguousarray(x) if x.size else np.ones(1, x.dtype), shape).astype(x.dtype)
    if not x.flags.c_contiguous and x.ndim >= 2:
        return np.ascontiguousarray(big.T).T
    if not x.flags.c_contiguous and x.ndim == 1:
        return np.concatenate([big, big])[::2]
    return big


@given(st.sampled_from(UNARY), st.sampled_from([np.float32, np.float64]), st.data())
def test_unary_ufuncs_on_special_values(name, dtype, data):
    vals = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 5e-324, 1e-300, 88.7, 89.0, 709.8, 710.0,
                     -745.2, 1.0, -1.0, 0.5, 1e30, -1e30], dtype=np.float64)
    x = vals.astype(dtype)
    extra = np.asarray(data.draw(st.lists(st.floats(width=32 if dtype == np.float32 else 64), min_size=1,
                                          max_size=20)), dtype=dtype)
    x = np.concatenate([x, extra])
    f = getattr(np, name)
    with np.errstate(all="ignore"):
        try:
            expected = f(x)
        except TypeError:
            return
    got = tj.jit(f)(x)
    assert got.dtype == expected.dtype
    if expected.dtype.kind == "b":
        np.testing.assert_array_equal(got, expected)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{name}: nan positions")
    inf = np.isinf(expected)
    np.testing.assert_array_equal(got[inf], expected[inf], err_msg=f"{name}: infinities")
    np.testing.assert_array_equal(np.signbit(got[expected == 0]), np.signbit(expected[expected == 0]),
                                  err_msg=f"{name}: signed zeros")
    fin = np.isfinite(expected)
    np.testing.assert_allclose(got[fin], expected[fin], rtol=4 * np.finfo(dtype).eps,
                               atol=4 * np.finfo(dtype).smallest_subnormal, err_msg=name)
