"""numpy's products on traced values: matmul, dot, inner/vdot, outer, tensordot, einsum (registered into
numpy_api.IMPLS; einsum lowers each pair of operands to a transpose, a reshape and one matmul or reduce)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from .numpy_api import _no, _require_cast, _ufunc_options, impl, ravel


@impl("matmul")
def matmul(a, b, out=None, *, dtype=None, casting="same_kind", order="K", subok=True, **kw):
    _no({"out": out, **kw}, "out", *kw, fn="matmul")
    _ufunc_options("matmul", True, casting, order, dtype)
    if dtype is not None:  # the product is computed in dtype (numpy's loop for that output)
        dt = T.check_dtype(dtype, "np.matmul's dtype=")
        _require_cast(a.dtype, dt, casting, "np.matmul")
        _require_cast(b.dtype, dt, casting, "np.matmul")
        a, b = ops.convert(a, dt), ops.convert(b, dt)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions (has 0, gufunc core with "
                         "signature (n?,k),(k,m?)->(n?,m?) requires 1)")
    dt = T.result_dtype(a.type, b.type)[0]
    if dt == T.BOOL:
        raise TypeError("matmul of bool arrays is not supported by tracejit; cast to an integer or float dtype")
    a, b = ops.convert(a, dt), ops.convert(b, dt)
    squeeze_a = a.ndim == 1
    squeeze_b = b.ndim == 1
    if squeeze_a:
        a = ops.reshape(a, (1,) + a.shape)
    if squeeze_b:
        b = ops.reshape(b, b.shape + (1,))
    k1, k2 = a.shape[-1], b.shape[-2]
    if k1 != k2:
        if isinstance(k1, int) and isinstance(k2, int):
            raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc "
                             f"signature (n?,k),(k,m?)->(n?,m?) (size {k2} is different from {k1})")
        ops.current().constraints.append(Constraint.same(k1, k2, (  # exact: a core dim of 1 does not broadcast
            "matmul: Input operand 1 has a mismatch in its core dimension 0, with gufunc signature "
            "(n?,k),(k,m?)->(n?,m?) (size {b} is different from {a})"), (a.shape, b.shape)))
        ops.current().constraints.append(Constraint.eq(k1, k2, (a.shape, b.shape)))
    batch = T.broadcast_shapes(a.shape[:-2], b.shape[:-2], constraints=ops.current().constraints)
    a = ops.broadcast_to(a, batch + a.shape[-2:]) if a.shape[:-2] != batch else a
    b = ops.broadcast_to(b, batch + b.shape[-2:]) if b.shape[:-2] != batch else b
    if dt == T.FLOAT16:  # numpy's float16 matmul sums in float32 and rounds once; BLAS has no half gemm
        out = ops.convert(ops.bind("matmul", ops.convert(a, T.FLOAT32), ops.convert(b, T.FLOAT32)), T.FLOAT16)
    else:
        out = ops.bind("matmul", a, b)
    if squeeze_a or squeeze_b:
        shp = list(out.shape)
        if squeeze_b:
            del shp[-1]
        if squeeze_a:
            del shp[-1 if squeeze_b else -2]
        out = ops.reshape(out, tuple(shp))
    return out


@impl("dot")
def dot(a, b, out=None):
    _no({"out": out}, "out", fn="dot")
    if a.ndim == 0 or b.ndim == 0:
        return ops.ufunc("multiply", a, b)
    if b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))


@impl("vdot", "inner")
def inner(a, b):
    if a.ndim == 0 or b.ndim == 0:
        return ops.ufunc("multiply", a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


@impl("outer")
def outer(a, b, out=None):
    _no({"out": out}, "out", fn="outer")
    a, b = ravel(a), ravel(b)
    return ops.ufunc("multiply", ops.reshape(a, a.shape + (1,)), ops.reshape(b, (1,) + b.shape))


@impl("tensordot")
def tensordot(a, b, axes=2):
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    if len(ax_a) != len(ax_b):
        raise ValueError("shape-mismatch for sum")
    ax_a = [ops.normalize_axis(x, a.ndim)[0] for x in ax_a]
    ax_b = [ops.normalize_axis(x, b.ndim)[0] for x in ax_b]
    for i, j in zip(ax_a, ax_b):
        if a.shape[i] != b.shape[j] and isinstance(a.shape[i], int) and isinstance(b.shape[j], int):
            raise ValueError(f"shape-mismatch for sum: {T.shape_str(a.shape)} axis {i} vs "
                             f"{T.shape_str(b.shape)} axis {j}")
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [j for j in range(b.ndim) if j not in ax_b]
    at = ops.transpose(a, tuple(free_a + ax_a))
    bt = ops.transpose(b, tuple(ax_b + free_b))
    M = T.prod([a.shape[i] for i in free_a])
    N = T.prod([b.shape[j] for j in free_b])
    # each side's contracted length from its own dims (a constant operand has static ones); matmul checks they agree
    a2 = ops.reshape(at, (M, T.prod([a.shape[i] for i in ax_a])))
    b2 = ops.reshape(bt, (T.prod([b.shape[j] for j in ax_b]), N))
    out = matmul(a2, b2)
    return ops.reshape(out, tuple(a.shape[i] for i in free_a) + tuple(b.shape[j] for j in free_b))


@impl("einsum")
def einsum(subscripts, *operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    _no({"out": out}, "out", fn="einsum")  # optimize= picks a contraction order: the result is the same
    if order not in ("K", "A", "C"):
        raise UnsupportedError(f"np.einsum: order={order!r} is not supported by tracejit (results are C-ordered)")
    if dtype is not None:  # the whole contraction runs in dtype, operands cast by ``casting`` (numpy: 'safe')
        dt = T.check_dtype(dtype, "np.einsum's dtype=")
        for op in operands:
            _require_cast(op.dtype, dt, casting, "np.einsum")
        operands = tuple(ops.convert(op, dt) for op in operands)
    if not isinstance(subscripts, str):
        raise UnsupportedError("np.einsum: only the subscripts-string form is supported by tracejit")
    subscripts = subscripts.replace(" ", "")
    if "..." in subscripts:
        raise UnsupportedError("np.einsum: '...' in subscripts is not supported by tracejit")
    if "->" in subscripts:
        lhs, out = subscripts.split("->")
    else:
        lhs = subscripts
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"np.einsum: {len(terms)} operand subscripts but {len(operands)} operands")
    for t, op in zip(terms, operands):
        if len(t) != op.ndim:
            raise ValueError(f"np.einsum: operand subscripts '{t}' do not match an operand of rank {op.ndim}")
        if len(set(t)) != len(t):
            raise UnsupportedError("np.einsum: repeated subscripts within one operand (traces/diagonals) are not "
                                   "supported by tracejit")
    dims = {}
    for t, op in zip(terms, operands):
        for c, d in zip(t, op.shape):
            if c in dims and dims[c] != d and d != 1 and dims[c] != 1:
                if isinstance(d, int) and isinstance(dims[c], int):
                    raise ValueError(f"np.einsum: size of label '{c}' differs between operands ({dims[c]} vs {d})")
            dims.setdefault(c, d)
    cur, cur_t = operands[0], terms[0]
    for i in range(1, len(operands)):
        later = set(out) | set("".join(terms[i + 1:]))
        cur, cur_t = _einsum_pair(cur, cur_t, operands[i], terms[i], later)
    # single-operand tail: sum letters not in the output, then permute
    drop = [k for k, c in enumerate(cur_t) if c not in out]
    if drop:
        cur = ops.reduce("sum", cur, tuple(drop))
        cur_t = "".join(c for c in cur_t if c in out)
    return ops.transpose(cur, tuple(cur_t.index(c) for c in out))


def _einsum_pair(a, ta, b, tb, keep):
    # letters only in one operand and not needed later: sum them out first
    for side in (0, 1):
        x, t, other = (a, ta, tb) if side == 0 else (b, tb, ta)
        drop = [k for k, c in enumerate(t) if c not in other and c not in keep]
        if drop:
            x = ops.reduce("sum", x, tuple(drop))
            t = "".join(c for c in t if c not in [t[k] for k in drop])
        if side == 0:
            a, ta = x, t
        else:
            b, tb = x, t
    batch = [c for c in ta if c in tb and c in keep]
    contract = [c for c in ta if c in tb and c not in keep]
    fa = [c for c in ta if c not in tb]
    fb = [c for c in tb if c not in ta]
    at = ops.transpose(a, tuple(ta.index(c) for c in batch + fa + contract))
    bt = ops.transpose(b, tuple(tb.index(c) for c in batch + contract + fb))
    sa = dict(zip(ta, a.shape))
    sb = dict(zip(tb, b.shape))
    bshape = tuple(sa[c] if sa[c] != 1 else sb[c] for c in batch)
    A = ops.reshape(at, tuple(sa[c] for c in batch) + (T.prod([sa[c] for c in fa]), T.prod([sa[c] for c in contract])))
    B = ops.reshape(bt, tuple(sb[c] for c in batch) + (T.prod([sb[c] for c in contract]), T.prod([sb[c] for c in fb])))
    out = matmul(A, B)
    out = ops.reshape(out, bshape + tuple(sa[c] for c in fa) + tuple(sb[c] for c in fb))
    return out, "".join(batch + fa + fb)
