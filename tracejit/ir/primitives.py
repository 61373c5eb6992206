"""Every primitive, one row each: name, kind, type rule and numpy reference.

Kinds:
  elementwise  n-ary, numpy broadcasting, all inputs share one compute dtype (ops.py inserts ``convert``)
  reduce       params ``axes`` (sorted tuple); the result drops those axes
  view         reshape, transpose, broadcast_to, slice: change the index map, not the data
  other        matmul, concatenate, gather, scatter_add, dimsize, iota

The VJP rules live beside the autodiff pass (``passes/autodiff.py``), one table keyed by these names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import types as T
from .types import TensorType


@dataclass(frozen=True)
class Primitive:
    name: str
    kind: str
    impl: Callable  # numpy reference: impl(*arrays, **params) -> array
    commutative: bool = False
    nin: int = 1


PRIMS: dict[str, Primitive] = {}


def _reg(name, kind, impl, commutative=False, nin=1):
    PRIMS[name] = Primitive(name, kind, impl, commutative, nin)


def _sigmoid(x):
    """Numerically stable logistic function (scipy.special.expit without importing scipy, which is slow)."""
    x = np.asarray(x)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _softplus(x):
    return np.logaddexp(np.zeros((), x.dtype), x)


# ------------------------------------------------------------------------------------------------ elementwise
UNARY_UFUNCS = {
    "negative": np.negative, "positive": np.positive, "absolute": np.absolute, "sign": np.sign,
    "square": np.square, "sqrt": np.sqrt, "cbrt": np.cbrt, "reciprocal": np.reciprocal, "exp": np.exp,
    "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "arcsinh": np.arcsinh, "arccosh": np.arccosh,
    "arctanh": np.arctanh, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc, "rint": np.rint,
    "logical_not": np.logical_not, "invert": np.invert, "isnan": np.isnan, "isinf": np.isinf,
    "isfinite": np.isfinite, "deg2rad": np.deg2rad, "rad2deg": np.rad2deg, "signbit": np.signbit,
    "spacing": np.spacing,
}
BINARY_UFUNCS = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "floor_divide": np.floor_divide, "remainder": np.remainder, "power": np.power, "arctan2": np.arctan2,
    "maximum": np.maximum, "minimum": np.minimum, "fmax": np.fmax, "fmin": np.fmin, "logaddexp": np.logaddexp,
    "hypot": np.hypot, "equal": np.equal, "not_equal": np.not_equal, "less": np.less,
    "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
    "heaviside": np.heaviside, "copysign": np.copysign, "nextafter": np.nextafter, "ldexp": np.ldexp,
    "float_power": np.float_power, "logaddexp2": np.logaddexp2, "gcd": np.gcd, "lcm": np.lcm,
    "left_shift": np.left_shift, "right_shift": np.right_shift,
}
COMMUTATIVE = {"add", "multiply", "maximum", "minimum", "fmax", "fmin", "logaddexp", "hypot", "equal",
               "not_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
               "bitwise_xor", "logaddexp2", "gcd", "lcm"}
# Non-ufunc elementwise primitives: numerically stable forms the stability pass and tracejit.nn produce.
EXTRA_UNARY = {"sigmoid": _sigmoid, "softplus": _softplus, "sinc": np.sinc}  # np.sinc is no ufunc


def _scipy_special(name):
    """Reference of a special function that backends take from a math library (C libm, CUDA libdevice); scipy is
    imported on first use only (it costs ~0.2 s)."""
    def f(x):
        import scipy.special
        with np.errstate(all="ignore"):
            return getattr(scipy.special, name)(x)
    return f


# The special functions tracejit.scipy_special builds the others from (erf, erfc, log|gamma|, gamma): each is a call
# into a well-kept math library, so they are primitives rather than decompositions.
SPECIAL_UNARY = {"erf": _scipy_special("erf"), "erfc": _scipy_special("erfc"), "lgamma": _scipy_special("gammaln"),
                 "tgamma": _scipy_special("gamma")}
EXTRA_UNARY.update(SPECIAL_UNARY)
UFUNCS = {**UNARY_UFUNCS, **BINARY_UFUNCS}
FLOAT_ONLY = {"sigmoid", "softplus", "sinc", *SPECIAL_UNARY}

for _n, _f in UNARY_UFUNCS.items():
    _reg(_n, "elementwise", _f)
for _n, _f in EXTRA_UNARY.items():
    _reg(_n, "elementwise", lambda x, _f=_f: np.asarray(_f(x)).astype(x.dtype, copy=False))
for _n, _f in BINARY_UFUNCS.items():
    _reg(_n, "elementwise", _f, _n in COMMUTATIVE, 2)
_reg("where", "elementwise", np.where, nin=3)
# identity whose gradient is zero (JAX's stop_gradient): the max shift of softmax/logsumexp is one, since their
# value does not depend on it; the simplify pass removes it once differentiation is done
_reg("stop_gradient", "elementwise", lambda x: np.array(x, copy=True))
_reg("convert", "elementwise", lambda x, dtype: np.asarray(x).astype(dtype))

# ------------------------------------------------------------------------------------------------ reductions
REDUCTIONS = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min, "any": np.any, "all": np.all,
              "argmax": np.argmax, "argmin": np.argmin}


def _reduce_impl(f, name):
    def impl(x, axes):
        if name in ("argmax", "argmin"):
            return _arg_reduce(f, x, axes)
        return np.asarray(f(x, axis=axes))
    return impl


def _arg_reduce(f, x, axes):
    """argmax over several axes: the flat index within the reduced axes (C order)."""
    keep = [a for a in range(x.ndim) if a not in axes]
    xt = np.transpose(x, keep + list(axes))
    xt = xt.reshape(xt.shape[:len(keep)] + (-1,))
    return np.asarray(f(xt, axis=-1))


for _n, _f in REDUCTIONS.items():
    _reg(_n, "reduce", _reduce_impl(_f, _n))

# ------------------------------------------------------------------------------------------------ views / other


def _slice_impl(x, starts, steps, shape):
    idx = tuple(slice(s, s + st * n if st > 0 else (s + st * n if s + st * n >= 0 else None), st)
                for s, st, n in zip(starts, steps, shape))
    return x[idx]


_reg("reshape", "view", lambda x, shape: np.reshape(x, shape))
_reg("transpose", "view", lambda x, perm: np.transpose(x, perm))
_reg("broadcast_to", "view", lambda x, shape: np.broadcast_to(x, shape))
_reg("slice", "view", _slice_impl)
_reg("matmul", "other", np.matmul, nin=2)
_reg("concatenate", "other", lambda *xs, axis: np.concatenate(xs, axis=axis), nin=-1)
_reg("gather", "other", lambda x, idx, axis: np.take(x, idx, axis=axis), nin=2)


def _scatter_add(g, idx, axis, size):
    shape = list(g.shape[:axis]) + [size] + list(g.shape[axis + idx.ndim:])
    out = np.zeros(shape, g.dtype)
    moved = np.moveaxis(out, axis, 0)
    gm = np.moveaxis(g, list(range(axis, axis + idx.ndim)), list(range(idx.ndim)))
    np.add.at(moved, idx, gm)
    return out


_reg("scatter_add", "other", _scatter_add, nin=2)
_reg("dimsize", "other", lambda dim: np.asarray(dim, np.int64), nin=0)
# int64 0..length-1 (numpy's arange for a symbolic length): fused as the loop index of its axis, no memory read
_reg("iota", "other", lambda length: np.arange(length, dtype=np.int64), nin=0)
# identity on its first input that carries a user's derivative rule (tracejit/custom.py); its other inputs are the
# call's arguments and residuals, so rewrites keep them in the graph until the optimizer drops the mark
_reg("custom_vjp_call", "other", lambda x, *rest, **p: np.array(x, copy=True), nin=1)
# identity on its first input, ordered after the others (a checkpoint's recomputation waits for the backward pass's
# cotangents) and opaque to CSE (the recomputation is not merged back into the forward pass); lowered as an alias
_reg("remat_barrier", "other", lambda x, *rest: np.array(x, copy=True), nin=1)
IDENTITY_MARKS = ("custom_vjp_call", "remat_barrier")


def _region_impl(name):
    """The reference of one result of a region equation (ir/regions.py); the interpreter runs a loop's sibling
    results once instead of calling this per result."""
    def impl(*args, **params):
        from .regions import evaluate_body, run_group
        return run_group(name, params, list(args), lambda r, xs: evaluate_body(r, xs, {}))[params["result"]]
    return impl


# loops and branches: bodies are closed graphs in the params (ir/regions.py), one equation per result
for _n in ("scan", "while_loop", "cond"):
    _reg(_n, "region", _region_impl(_n), nin=-1)  # identities on input 0 that backends may alias away

# ------------------------------------------------------------------------------------------------ type rules
_resolve_cache: dict = {}


def _probe(t: TensorType):
    if t.weak:
        return {"b": T.BOOL, "i": int, "u": int, "f": float}[t.dtype.kind]  # numpy takes no Python bool here
    return t.dtype


# float16 rows the scalar table computes in float32 and rounds (as numpy): these two read the float16 bit pattern
# itself, which a float32 computation cannot see
NOT_FOR_FLOAT16 = ("nextafter", "spacing")


def elementwise_dtypes(prim: str, types) -> tuple[tuple, np.dtype, bool]:
    """(compute dtypes of the inputs, output dtype, weak) for an elementwise primitive, by numpy's own rules."""
    key = (prim,) + tuple((t.dtype, t.weak) for t in types)
    hit = _resolve_cache.get(key)
    if hit is not None:
        return hit
    weak = all(t.weak for t in types)
    if prim == "stop_gradient":
        res = ((types[0].dtype,), types[0].dtype, types[0].weak)
    elif prim == "where":
        dt, _ = T.result_dtype(*types[1:])
        res = ((T.BOOL, dt, dt), dt, all(t.weak for t in types[1:]))
    elif prim in EXTRA_UNARY:
        dt = T.default_float(types[0].dtype, prim)
        res = ((dt,), dt, weak)
    else:
        uf = UFUNCS[prim]
        probes = tuple(_probe(t) for t in types)
        if weak:  # all Python scalars: compute as numpy does with default dtypes, stay weak
            probes = tuple(t.dtype for t in types)
        try:
            dts = uf.resolve_dtypes(probes + (None,))
        except Exception as e:  # numpy's UFuncTypeError and friends
            names = ", ".join(("python " if t.weak else "") + t.dtype.name for t in types)
            raise TypeError(f"np.{prim} is not supported for inputs of dtype ({names}) (numpy says: {e})") from None
        ins, out = dts[:-1], dts[-1]
        for d in tuple(ins) + (out,):
            if d not in T.SUPPORTED_DTYPES:
                names = ", ".join(t.dtype.name for t in types)
                raise TypeError(f"np.{prim} of ({names}) computes in {d}, which tracejit does not support; "
                                f"cast the operands first (e.g. .astype(np.float64))")
        if prim in NOT_FOR_FLOAT16 and T.FLOAT16 in ins:
            raise TypeError(f"np.{prim} of float16 values is not supported by tracejit (it needs float16's bit "
                            f"pattern); compute it in float32: np.{prim}(x.astype(np.float32), ...)")
        if prim == "ldexp":  # numpy's int32 or int64 exponent loops agree: one int64 exponent for the backends
            ins = (ins[0], T.INT64)
        res = (tuple(ins), out, weak)
    _resolve_cache[key] = res
    return res


def forced_dtypes(prim: str, types, dtype, casting="same_kind") -> tuple[tuple, np.dtype]:
    """(input dtypes, output dtype) of ufunc ``prim`` called with ``dtype=``: numpy's loop for that output
    (``signature=(None, ..., dtype)``); numpy's own error when the inputs cannot be cast by ``casting``."""
    uf = UFUNCS[prim]
    probes = tuple(_probe(t) for t in types)
    dts = uf.resolve_dtypes(probes + (None,), signature=(None,) * len(types) + (np.dtype(dtype),), casting=casting)
    for d in dts:
        if d not in T.SUPPORTED_DTYPES:
            raise TypeError(f"np.{prim} with dtype={np.dtype(dtype)} computes in {d}, which tracejit does not "
                            f"support; use one of bool, int32, int64, float32, float64")
    return tuple(dts[:-1]), dts[-1]


def reduce_dtype(prim: str, dt: np.dtype) -> np.dtype:
    if prim in ("argmax", "argmin"):
        return T.INT64
    if prim in ("any", "all"):
        return T.BOOL
    if prim in ("max", "min"):
        return dt
    return np.sum(np.ones(1, dt)).dtype if prim == "sum" else np.prod(np.ones(1, dt)).dtype

# ------------------------------------------------------------------------------------------------ library calls
# Work a library routine does on whole arrays (numpy's sort, LAPACK through numpy.linalg, pocketfft): the numpy
# routine is the implementation and no loop nest can be fused into it, so a backend calls it between its compiled
# segments. Each returns one array; a routine with several results (eigh, svd, qr, slogdet, a transform's real and
# imaginary parts) is one primitive with an ``output`` parameter naming the result, equal calls that differ only in
# it can share one library call. ``nonzero`` has a data-dependent length: its ``length`` parameter is a fresh
# unbacked Dim (types.unbacked_dim) that the call binds from the shape of the array it returns.
LIBRARY_TYPES: dict = {}  # name -> rule(inputs, params) -> TensorType
# name -> impl(*inputs, **params without ``output``) -> every result at once: what a backend calls when a program
# reads several results of one call (svd's u, s and vh; a transform's two parts), so the routine runs once
LIBRARY_ALL_OUTPUTS: dict = {}


def _lib(name, impl, type_rule, nin=1, all_outputs=None):
    _reg(name, "library", impl, nin=nin)
    LIBRARY_TYPES[name] = type_rule
    if all_outputs is not None:
        LIBRARY_ALL_OUTPUTS[name] = all_outputs


def is_library_call(eqn) -> bool:
    """Whether an equation is a call into a library routine (a cut point between compiled segments)."""
    return PRIMS[eqn.prim].kind == "library"


def unbacked_outputs(eqn) -> dict:
    """{symbol: axis} of the data-dependent lengths an equation introduces: fresh symbols of its result's shape
    that no input's shape has (it binds them from the shape of the array it returns)."""
    if PRIMS[eqn.prim].kind != "library":
        return {}
    seen = set()
    for v in eqn.inputs:
        for d in v.shape:
            seen |= T.unbacked_symbols(d)
    out = {}
    for ax, d in enumerate(eqn.out.shape):
        if isinstance(d, T.Dim) and len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
            sym = d.terms[0][0][0]
            if T.is_unbacked_symbol(sym) and sym not in seen:
                out.setdefault(sym, ax)
    return out


def _same(x, **_):
    return x.type if not x.type.weak else TensorType(x.dtype, x.shape)


def _typed(dtype, shape):
    return TensorType(np.dtype(dtype), tuple(shape))


def _pick(results, output):
    return results[output]


def whole_complex(re, im):
    """The complex array whose whole real and imaginary parts ``re`` and ``im`` are (views, as a complex argument
    enters a program and as a transform's result leaves its library call), else None."""
    base = getattr(re, "base", None)
    if base is None or getattr(im, "base", None) is not base or type(base) is not np.ndarray or \
            base.dtype.kind != "c" or re.dtype != base.real.dtype or re.shape != base.shape or \
            im.shape != base.shape or re.strides != base.strides or im.strides != base.strides:
        return None
    # views of ``base`` with its shape and strides start at its real or at its imaginary parts: ``re`` and ``im``
    # are those two (in that order) when ``im`` starts one part after ``re``
    if im.__array_interface__["data"][0] - re.__array_interface__["data"][0] != re.itemsize:
        return None
    return base


def _complex(re, im):
    whole = whole_complex(re, im)
    if whole is not None:
        return whole
    re = np.asarray(re)
    z = np.empty(np.broadcast_shapes(re.shape, np.shape(im)), np.result_type(re.dtype, np.complex64))
    z.real, z.imag = re, im
    return z


def _parts(z, dtype, output):
    return np.ascontiguousarray((z.real if output == 0 else z.imag).astype(dtype))


def _print_value(x, message, attrs):
    """Theano's Print: ``message attr = value`` per attribute when the call reaches it; the value passes through."""
    for a in attrs:
        v = getattr(x, a)
        print(message, a, "=", v() if callable(v) else v)
    return x


def _python_op(*arrays, op, index, dtype, length):
    """A user's op (theano.Op): the ``op`` object runs itself on the arrays; ``length``: the result's shape, whose
    unknown lengths the call binds."""
    return op.run(arrays, index, dtype, length)


_lib("python_op", _python_op, lambda xs, p: _typed(p["dtype"], p["length"]), nin=-1)
# identity that prints its value at run time (theano.printing.Print): a library call, so it runs where the call
# reaches it, between compiled segments
_lib("debug_print", _print_value, lambda xs, p: _same(xs[0]))


def _both_parts(z, dtype):
    """The real and imaginary parts of ``z`` as views (no copy when the part dtype matches): compiled steps copy
    what they read, and a complex result whose two views reach the output untouched is returned as ``z`` itself
    (trace.join_complex)."""
    z = z.astype(np.complex64 if np.dtype(dtype) == np.float32 else np.complex128, copy=False)
    return z.real, z.imag


_lib("sort", lambda x, axis, kind: np.sort(x, axis=axis, kind=kind), lambda xs, p: _same(xs[0]))
# numpy's sequential running sum along the last axis: one pass over memory, where a scan of fused kernels does
# several (and numpy's exact rounding order)
_lib("cumsum", lambda x: np.cumsum(x, axis=-1, dtype=x.dtype), lambda xs, p: _same(xs[0]))
_lib("argsort", lambda x, axis, kind: np.argsort(x, axis=axis, kind=kind).astype(np.int64),
     lambda xs, p: _typed(T.INT64, xs[0].shape))


def _argsort_rows(x):
    """The stable permutation that sorts the rows of each (n, m) matrix lexicographically (first column first),
    as numpy.unique(axis=) orders them."""
    if x.ndim > 2:
        return np.stack([_argsort_rows(m) for m in x.reshape((-1,) + x.shape[-2:])]).reshape(x.shape[:-1])
    if x.shape[1] == 0:
        return np.arange(x.shape[0], dtype=np.int64)
    return np.lexsort(x.T[::-1]).astype(np.int64)


_lib("argsort_rows", _argsort_rows, lambda xs, p: _typed(T.INT64, xs[0].shape[:-1]))
_lib("partition", lambda x, kth, axis: np.partition(x, kth, axis=axis), lambda xs, p: _same(xs[0]))
_lib("argpartition", lambda x, kth, axis: np.argpartition(x, kth, axis=axis).astype(np.int64),
     lambda xs, p: _typed(T.INT64, xs[0].shape))
_lib("nonzero", lambda x, length: np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1),
     lambda xs, p: _typed(T.INT64, (xs[0].ndim, p["length"])))


def _trip_count(k, length):
    """A run-time trip count as an array's length (Theano's symbolic ``n_steps``): ``length`` binds from it."""
    k = int(k)
    if k < 0:
        raise ValueError(f"scan: n_steps must be >= 0, got {k}")
    return np.zeros(k, np.bool_)


_lib("trip_count", _trip_count, lambda xs, p: _typed(T.BOOL, (p["length"],)))
_lib("linalg_inv", lambda a: np.linalg.inv(a), lambda xs, p: _same(xs[0]))
_lib("linalg_solve", lambda a, b: np.linalg.solve(a, b), lambda xs, p: _same(xs[1]), nin=2)
_lib("cholesky", lambda a: np.linalg.cholesky(a), lambda xs, p: _same(xs[0]))
_lib("slogdet", lambda a, output: np.asarray(np.linalg.slogdet(a)[output]),
     lambda xs, p: _typed(xs[0].dtype, xs[0].shape[:-2]),
     all_outputs=lambda a: tuple(np.asarray(r) for r in np.linalg.slogdet(a)))


def _eigh_type(xs, p):
    a = xs[0]
    return _typed(a.dtype, a.shape[:-1] if p["output"] == 0 else a.shape)


_lib("eigh", lambda a, UPLO, output: np.linalg.eigh(a, UPLO=UPLO)[output], _eigh_type,
     all_outputs=lambda a, UPLO: tuple(np.linalg.eigh(a, UPLO=UPLO)))


def _eig_all(a, vectors):
    """numpy.linalg.eig (``vectors``) or eigvals of a real matrix, whose results numpy returns real exactly when
    every eigenvalue is real: a traced program's dtypes are fixed before the values are known, so complex ones stop
    the call."""
    res = np.linalg.eig(a) if vectors else (np.linalg.eigvals(a),)
    if res[0].dtype.kind == "c":
        from ..errors import UnsupportedError
        raise UnsupportedError(f"np.linalg.{'eig' if vectors else 'eigvals'}: this matrix has complex eigenvalues, "
                               f"for which numpy returns complex arrays; tracejit fixed the result dtype when it traced "
                               f"(real), so it cannot return them. Use np.linalg.eigh for a symmetric matrix, or pass "
                               f"a complex matrix (a.astype(complex)): its eigenvalues are complex whatever they are")
    return tuple(res)


_lib("eig", lambda a, vectors, output: _eig_all(a, vectors)[output], _eigh_type, all_outputs=_eig_all)


def _svd_type(xs, p):
    a = xs[0]
    *batch, m, n = a.shape
    k = T.dim_min(m, n)
    full = p["full_matrices"]
    shapes = ((m, m if full else k), (k,), (n if full else k, n))
    return _typed(a.dtype, tuple(batch) + shapes[p["output"]])


_lib("svd", lambda a, full_matrices, output: np.linalg.svd(a, full_matrices=full_matrices)[output], _svd_type,
     all_outputs=lambda a, full_matrices: tuple(np.linalg.svd(a, full_matrices=full_matrices)))


def _qr_type(xs, p):
    a = xs[0]
    *batch, m, n = a.shape
    k = m if p["mode"] == "complete" else T.dim_min(m, n)
    return _typed(a.dtype, tuple(batch) + (((m, k), (k, n))[p["output"]]))


_lib("qr", lambda a, mode, output: np.linalg.qr(a, mode=mode)[output], _qr_type,
     all_outputs=lambda a, mode: tuple(np.linalg.qr(a, mode=mode)))


def _fft_impl(re, im, n, inverse, norm, output):
    """One part (0: real, 1: imaginary) of the complex transform along the last axis."""
    f = np.fft.ifft if inverse else np.fft.fft
    return _parts(f(_complex(re, im), n=n, axis=-1, norm=norm), re.dtype, output)


def _rfft_impl(x, n, norm, output):
    return _parts(np.fft.rfft(x, n=n, axis=-1, norm=norm), x.dtype, output)


def _fft_both(re, im, n, inverse, norm):
    f = np.fft.ifft if inverse else np.fft.fft
    return _both_parts(f(_complex(re, im), n=n, axis=-1, norm=norm), re.dtype)


def _rfft_both(x, n, norm):
    return _both_parts(np.fft.rfft(x, n=n, axis=-1, norm=norm), x.dtype)


def _complex_matmul_both(ar, ai, br, bi):
    """Both parts of ``(ar + i ai) @ (br + i bi)``: one complex gemm (BLAS's zgemm/cgemm through numpy's matmul)."""
    return _both_parts(np.matmul(_complex(ar, ai), _complex(br, bi)), ar.dtype)


_lib("complex_matmul", lambda ar, ai, br, bi, output: _complex_matmul_both(ar, ai, br, bi)[output],
     lambda xs, p: _typed(xs[0].dtype, xs[0].shape[:-1] + (xs[2].shape[-1],)), nin=4,
     all_outputs=_complex_matmul_both)


# numpy.linalg's routines on complex matrices (LAPACK's z/c routines), each complex operand given as its two parts
COMPLEX_LINALG = {"solve": np.linalg.solve, "inv": np.linalg.inv, "det": np.linalg.det,
                  "slogdet": np.linalg.slogdet, "eig": np.linalg.eig, "eigvals": np.linalg.eigvals}


def _complex_linalg_all(*parts, routine):
    """Every result of the routine as (real, imaginary) parts in turn (a real result's imaginary part is 0)."""
    zs = [_complex(parts[k], parts[k + 1]) for k in range(0, len(parts), 2)]
    res = COMPLEX_LINALG[routine](*zs)
    out = []
    for r in (tuple(res) if isinstance(res, tuple) else (res,)):
        r = np.asarray(r)
        out += _both_parts(r, parts[0].dtype) if r.dtype.kind == "c" else \
            (r.astype(parts[0].dtype), np.zeros(r.shape, parts[0].dtype))
    return tuple(out)


def _complex_linalg_type(xs, p):
    a, result = xs[0], p["output"] // 2
    shape = {"solve": xs[-1].shape, "inv": a.shape, "det": a.shape[:-2], "slogdet": a.shape[:-2],
             "eig": a.shape[:-1] if result == 0 else a.shape, "eigvals": a.shape[:-1]}[p["routine"]]
    return _typed(a.dtype, shape)


_lib("complex_linalg", lambda *parts, routine, output: _complex_linalg_all(*parts, routine=routine)[output],
     _complex_linalg_type, nin=-1, all_outputs=_complex_linalg_all)


def _irfft_impl(re, im, n, norm):
    return np.fft.irfft(_complex(re, im), n=n, axis=-1, norm=norm).astype(re.dtype)


_lib("fft", _fft_impl, lambda xs, p: _typed(xs[0].dtype, xs[0].shape[:-1] + (p["n"],)), nin=2, all_outputs=_fft_both)
_lib("rfft", _rfft_impl, lambda xs, p: _typed(xs[0].dtype, xs[0].shape[:-1] + (T.dim_floordiv(p["n"], 2) + 1,)),
     all_outputs=_rfft_both)
_lib("irfft", _irfft_impl, lambda xs, p: _typed(xs[0].dtype, xs[0].shape[:-1] + (p["n"],)), nin=2)
LIBRARY_PRIMS = tuple(LIBRARY_TYPES)
