"""Theano's convolution and pooling: ``tensor.nnet.conv2d`` and ``tensor.signal.pool.pool_2d``, written as numpy
on tracers, so they run under ``function`` and ``jit`` alike, with symbolic image and filter lengths, and are
differentiated by the ordinary reverse pass.

Both gather windows with index arrays (``rows = out_row * stride + offset * dilation - pad``), one axis at a time:
padding is a mask on the gathered values, so no padded copy of the image is made and every length may be
symbolic. A convolution is then one matrix product of the gathered patches (im2col) with the filters, which BLAS
does; pooling is a reduction over the window axis.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.types import Dim
from ..trace.symbolic import symbolic_apply
from ..trace.tracer import wrap
from ..ir.ops import iota as _iota


def _arange(n):
    """arange of a length that may be symbolic (numpy's own would ask for its int)."""
    return wrap(_iota(n))


def _scalar(d):
    """A length as a value arrays can be combined with (a symbolic length becomes a 0-d int64)."""
    return wrap(ops.dimsize(d)) if isinstance(d, Dim) else d


def _pair(x, what):
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"{what} must be an int or a pair of ints (rows, columns), got {x!r}")
        return tuple(x)
    return (x, x)


def _window_index(n_out, size, stride, dilation, pad, length):
    """(index, valid) of shape (n_out, size): the input positions each output position's window reads."""
    length = _scalar(length)
    idx = _arange(n_out)[:, None] * stride + _arange(size)[None, :] * dilation - _scalar(pad)
    valid = (idx >= 0) & (idx < length)
    return np.clip(idx, 0, np.maximum(length - 1, 0)), valid


def _gather_windows(x, axis, n_out, size, stride, dilation, pad, fill, inside):
    """x with ``axis`` replaced by two axes (n_out, size): each output position's window, ``fill`` outside the
    input. ``inside``: every window lies in the input by construction (no padding, no partial window)."""
    idx, valid = _window_index(n_out, size, stride, dilation, pad, x.shape[axis])
    win = np.take(x, idx, axis=axis)
    if inside:
        return win, None
    mask = valid.reshape(valid.shape + (1,) * (x.ndim - axis - 1))
    return np.where(mask, win, fill), mask


# ------------------------------------------------------------------------------------------------ convolution
def _conv_out(length, size, stride, dilation, pad):
    extent = (size - 1) * dilation + 1
    return T.dim_floordiv(length + 2 * pad - extent, stride) + 1


def _border(border_mode, kh, kw, dh, dw):
    if border_mode == "valid":
        return 0, 0
    if border_mode == "full":
        return (kh - 1) * dh, (kw - 1) * dw
    if border_mode == "half":
        return T.dim_floordiv((kh - 1) * dh + 1, 2) if not isinstance(kh, int) else ((kh - 1) * dh + 1) // 2, \
            T.dim_floordiv((kw - 1) * dw + 1, 2) if not isinstance(kw, int) else ((kw - 1) * dw + 1) // 2
    if isinstance(border_mode, (int, tuple, list)):
        return _pair(border_mode, "border_mode")
    raise ValueError(f"conv2d: border_mode must be 'valid', 'full', 'half', an int or a pair of ints, got "
                     f"{border_mode!r}")


def _conv2d(x, w, border_mode, subsample, filter_flip, filter_dilation):
    if x.ndim != 4 or w.ndim != 4:
        raise TypeError(f"conv2d: input must be 4-d (batch, channels, rows, columns) and filters 4-d (output "
                        f"channels, input channels, rows, columns); got {x.ndim}-d and {w.ndim}-d")
    (sh, sw), (dh, dw) = _pair(subsample, "subsample"), _pair(filter_dilation, "filter_dilation")
    kh, kw = w.shape[2], w.shape[3]
    ph, pw = _border(border_mode, kh, kw, dh, dw)
    if filter_flip:
        w = w[:, :, ::-1, ::-1]
    oh = _conv_out(x.shape[2], kh, sh, dh, ph)
    ow = _conv_out(x.shape[3], kw, sw, dw, pw)
    unpadded = border_mode == "valid" or border_mode in (0, (0, 0), [0, 0])
    rows, _ = _gather_windows(x, 2, oh, kh, sh, dh, ph, 0.0, unpadded)        # (b, c, oh, kh, W)
    patches, _ = _gather_windows(rows, 4, ow, kw, sw, dw, pw, 0.0, unpadded)  # (b, c, oh, kh, ow, kw)
    b, c = x.shape[0], x.shape[1]
    cols = np.transpose(patches, (0, 2, 4, 1, 3, 5)).reshape((b * oh * ow, c * kh * kw))
    out = cols @ w.reshape((w.shape[0], c * kh * kw)).T           # (b*oh*ow, o): one BLAS product
    return np.transpose(out.reshape((b, oh, ow, w.shape[0])), (0, 3, 1, 2))


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1),
           filter_flip=True, image_shape=None, filter_dilation=(1, 1), num_groups=1, unshared=False, **kwargs):
    """Theano's ``conv2d``: ``input`` (batch, channels, rows, columns) with ``filters`` (output channels, input
    channels, rows, columns); a true convolution (filters flipped) unless ``filter_flip=False``. The shape hints
    are checked when given, never needed."""
    if num_groups != 1 or unshared:
        raise NotImplementedError("conv2d: grouped (num_groups > 1) and unshared convolutions are not supported")
    _check_hint(input, input_shape or image_shape, "input_shape")
    _check_hint(filters, filter_shape, "filter_shape")
    return symbolic_apply(_conv2d, input, filters, border_mode, subsample, filter_flip, filter_dilation)


def _check_hint(x, hint, what):
    if hint is None:
        return
    if len(hint) != x.ndim:
        raise ValueError(f"conv2d: {what} {tuple(hint)} has {len(hint)} entries, but the variable has {x.ndim} "
                         f"dimensions")
    for ax, (d, h) in enumerate(zip(x.shape, hint)):
        if isinstance(d, int) and h is not None and d != h:
            raise ValueError(f"conv2d: {what} says axis {ax} has length {h}, but the variable's is {d}")


# ------------------------------------------------------------------------------------------------ pooling
_MODES = ("max", "sum", "average_inc_pad", "average_exc_pad", "average")


def _pool_out(length, size, stride, pad, ignore_border):
    if ignore_border:
        return T.dim_floordiv(length + 2 * pad - size, stride) + 1
    if stride >= size:
        return T.dim_floordiv(length + 2 * pad - 1, stride) + 1
    return T.dim_max(T.dim_floordiv(length + 2 * pad - 1 - size + stride, stride), 0) + 1


def _pool_axis(x, axis, size, stride, pad, ignore_border, mode):
    n_out = _pool_out(x.shape[axis], size, stride, pad, ignore_border)
    fill = -np.inf if mode == "max" else 0.0
    win, mask = _gather_windows(x, axis, n_out, size, stride, 1, pad, fill, ignore_border and pad == 0)
    red = np.max if mode == "max" else np.sum
    count = None
    if mode == "average_exc_pad":
        count = size if mask is None else np.sum(mask, axis=1)  # (n_out, 1, ...): broadcasts like the output
    return red(win, axis=axis + 1), count


def _pool_2d(x, ws, ignore_border, stride, pad, mode):
    if mode == "average" or mode == "average_inc_pad" and not ignore_border:
        # without padding, Theano counts a partial window at the end by the cells it covers
        mode = "average_inc_pad" if ignore_border else "average_exc_pad"
    out, counts = x, []
    for k, axis in enumerate((x.ndim - 2, x.ndim - 1)):
        out, count = _pool_axis(out, axis, ws[k], stride[k], pad[k], ignore_border, mode)
        counts.append(count)
    if mode == "average_inc_pad":
        return out / (ws[0] * ws[1])
    if mode == "average_exc_pad":
        return out / (counts[0] * counts[1])
    return out.astype(x.dtype) if mode != "max" else out


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode="max", ds=None, st=None,
            padding=None):
    """Theano's ``pool_2d`` over the last two axes: ``mode`` 'max', 'sum', 'average_inc_pad' or
    'average_exc_pad'; windows ``ws``, steps ``stride`` (default ``ws``), zero ``pad`` on both sides;
    ``ignore_border=False`` keeps the partial windows at the end (Theano's default here, as in Theano 1.0)."""
    ws = _pair(ws if ws is not None else ds, "ws")
    if ws[0] is None:
        raise TypeError("pool_2d: ws (the window shape, e.g. (2, 2)) is required")
    stride = _pair(stride if stride is not None else st if st is not None else ws, "stride")
    pad = _pair(padding if padding is not None else pad, "pad")
    for name, pair in (("ws", ws), ("stride", stride), ("pad", pad)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
            raise TypeError(f"pool_2d: {name} must be Python ints, got {pair!r}")
    if mode not in _MODES:
        raise ValueError(f"pool_2d: mode must be one of {', '.join(map(repr, _MODES))}, got {mode!r}")
    if (pad[0] or pad[1]) and not ignore_border:
        raise NotImplementedError("pool_2d: padding works only with ignore_border=True (as in Theano)")
    if pad[0] >= ws[0] or pad[1] >= ws[1]:
        raise ValueError(f"pool_2d: pad {pad} must be smaller than the window {ws}")
    if input.ndim < 2:
        raise TypeError(f"pool_2d: the input needs at least 2 dimensions, got {input.ndim}")
    return symbolic_apply(_pool_2d, input, tuple(map(int, ws)), bool(ignore_border), tuple(map(int, stride)),
                          tuple(map(int, pad)), mode)


def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
    """The older ``theano.tensor.signal.downsample.max_pool_2d``."""
    return pool_2d(input, ws=ds, ignore_border=ignore_border, stride=st, pad=padding, mode=mode)


__all__ = ["conv2d", "pool_2d", "max_pool_2d"]
