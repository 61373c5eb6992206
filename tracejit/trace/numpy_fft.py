"""np.fft on traced values. A complex array is a ``ComplexArray`` (complex_array.py): its real and imaginary parts
as two float arrays of the same shape (float32 parts for numpy's complex64). The transforms are
library primitives over those parts (``fft``, ``rfft``, ``irfft`` along the last axis; numpy's pocketfft is the
implementation); the n-d transforms apply them axis by axis, the Hermitian ones (hfft, ihfft) are irfft and rfft
in the swapped norm, and fftshift/fftfreq are plain array code.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from .complex_array import ComplexArray
from .complex_functions import COMPLEX_IMPLS
from .numpy_api import IMPLS, impl
from .numpy_more import _ax, _u, iota


def _real(x) -> Value:
    v = ops.as_value(x)
    return v if v.dtype.kind == "f" else ops.convert(v, T.FLOAT64)


def parts(x):
    """(real, imaginary) Values of a complex traced array, a traced array, an array or a Python complex."""
    from .tracer import unwrap
    if isinstance(x, ComplexArray):
        return x.re, x.im
    if isinstance(x, complex):
        return ops.constant(x.real, T.FLOAT64, weak=True), ops.constant(x.imag, T.FLOAT64, weak=True)
    if isinstance(x, np.ndarray) and x.dtype.kind == "c":
        return ops.as_value(x.real.copy()), ops.as_value(x.imag.copy())
    v = ops.as_value(unwrap(x))
    return v, ops.constant(0, v.dtype if v.dtype.kind == "f" else T.FLOAT64, weak=True)


def _pair(re: Value, im: Value) -> ComplexArray:
    return ComplexArray(re, im)


# ------------------------------------------------------------------------------------------------ transforms
_NORMS = (None, "backward", "ortho", "forward")


def _norm(norm):
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm}; should be "backward","ortho" or "forward".')
    return norm or "backward"


def _to_last(v: Value, ax: int) -> Value:
    if ax == v.ndim - 1:
        return v
    perm = tuple(i for i in range(v.ndim) if i != ax) + (ax,)
    return ops.transpose(v, perm)


def _from_last(v: Value, ax: int) -> Value:
    if ax == v.ndim - 1:
        return v
    perm = list(range(v.ndim - 1))
    perm.insert(ax, v.ndim - 1)
    return ops.transpose(v, tuple(perm))


def _length(n, default, what="n"):
    if n is None:
        return default
    if isinstance(n, T.Dim):
        return n
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"'{type(n).__name__}' object cannot be interpreted as an integer")
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return int(n)


def _c2c(x, n, axis, norm, inverse):
    re, im = parts(x)
    if re.ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    ax = _ax(axis, re.ndim)
    dt = re.dtype if re.dtype.kind == "f" and not re.type.weak else T.FLOAT64
    re = ops.convert(re, dt) if re.dtype != dt else re
    im = ops.broadcast_to(ops.convert(im, dt), re.shape)
    re, im = _to_last(re, ax), _to_last(im, ax)
    n = _length(n, re.shape[-1])
    p = dict(n=n, inverse=inverse, norm=_norm(norm))
    out = [ops.bind("fft", re, im, output=k, **p) for k in range(2)]
    return _pair(_from_last(out[0], ax), _from_last(out[1], ax))


def _check_real(a, name):
    if isinstance(a, ComplexArray):
        raise TypeError(f"np.fft.{name} takes a real array; this one is complex (use .real, or np.fft.fft)")
    return _real(a)


@impl("fft")
def fft(a, n=None, axis=-1, norm=None, out=None):
    _no_out(out, "fft")
    return _c2c(a, n, axis, norm, False)


@impl("ifft")
def ifft(a, n=None, axis=-1, norm=None, out=None):
    _no_out(out, "ifft")
    return _c2c(a, n, axis, norm, True)


@impl("rfft")
def rfft(a, n=None, axis=-1, norm=None, out=None):
    _no_out(out, "rfft")
    x = _check_real(a, "rfft")
    ax = _ax(axis, x.ndim) if x.ndim else _ax(axis, 0)
    x = _to_last(x, ax)
    n = _length(n, x.shape[-1])
    out = [ops.bind("rfft", x, n=n, norm=_norm(norm), output=k) for k in range(2)]
    return _pair(_from_last(out[0], ax), _from_last(out[1], ax))


@impl("irfft")
def irfft(a, n=None, axis=-1, norm=None, out=None):
    _no_out(out, "irfft")
    re, im = parts(a)
    re = _real(re)
    ax = _ax(axis, re.ndim) if re.ndim else _ax(axis, 0)
    im = ops.broadcast_to(ops.convert(im, re.dtype), re.shape)
    re, im = _to_last(re, ax), _to_last(im, ax)
    n = _length(n, 2 * (re.shape[-1] - 1))
    return _from_last(ops.bind("irfft", re, im, n=n, norm=_norm(norm)), ax)


def _no_out(out, name):
    if out is not None:
        raise UnsupportedError(f"np.fft.{name}: the out= argument is not supported by tracejit")


def _axes_lengths(shape_ndim, s, axes, default_axes):
    if axes is None:
        axes = default_axes if s is None else tuple(range(-len(s), 0))
    axes = tuple(axes)
    if s is not None and len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    return axes, (tuple(s) if s is not None else (None,) * len(axes))


def _nd(name, inverse, default_axes):
    def f(a, s=None, axes=default_axes, norm=None, out=None):
        _no_out(out, name)
        axes_, ns = _axes_lengths(None, s, axes, default_axes)
        z = a
        for ax, n in zip(axes_, ns):
            z = _c2c(z, n, ax, norm, inverse)
        return z
    f.__name__ = name
    return f


def _rnd(name, default_axes):
    def f(a, s=None, axes=default_axes, norm=None, out=None):
        _no_out(out, name)
        axes_, ns = _axes_lengths(None, s, axes, default_axes)
        z = rfft(a, ns[-1], axes_[-1], norm)
        for ax, n in zip(axes_[:-1], ns[:-1]):
            z = _c2c(z, n, ax, norm, False)
        return z
    f.__name__ = name
    return f


def _irnd(name, default_axes):
    def f(a, s=None, axes=default_axes, norm=None, out=None):
        _no_out(out, name)
        axes_, ns = _axes_lengths(None, s, axes, default_axes)
        z = a
        for ax, n in zip(axes_[:-1], ns[:-1]):
            z = _c2c(z, n, ax, norm, True)
        return irfft(z, ns[-1], axes_[-1], norm)
    f.__name__ = name
    return f


FFT_IMPLS = {"fft": fft, "ifft": ifft, "rfft": rfft, "irfft": irfft,
             "fft2": _nd("fft2", False, (-2, -1)), "ifft2": _nd("ifft2", True, (-2, -1)),
             "rfft2": _rnd("rfft2", (-2, -1)), "irfft2": _irnd("irfft2", (-2, -1))}


_SWAPPED_NORM = {None: "forward", "backward": "forward", "ortho": "ortho", "forward": "backward"}


def hfft(a, n=None, axis=-1, norm=None, out=None):
    """numpy.fft.hfft: the real signal of a Hermitian-symmetric spectrum, irfft(conj(a)) in the swapped norm."""
    _no_out(out, "hfft")
    _norm(norm)
    re, im = parts(a)
    if re.ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    if n is None:
        n = 2 * (re.shape[_ax(axis, re.ndim)] - 1)
    return irfft(_pair(re, _u("negative", im)), n, axis, _SWAPPED_NORM[norm])


def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """numpy.fft.ihfft: conj(rfft(a)) in the swapped norm (the inverse of hfft)."""
    _no_out(out, "ihfft")
    _norm(norm)
    return rfft(a, n, axis, _SWAPPED_NORM[norm]).conj()


def _shift(x, axes, sign):
    """fftshift (sign +1) / ifftshift (-1): roll each axis by half its length (numpy's ``dim // 2``)."""
    if isinstance(x, ComplexArray):
        return _pair(_shift(x.re, axes, sign), _shift(x.im, axes, sign))
    x = ops.as_value(x)
    axes = tuple(range(x.ndim)) if axes is None else (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    shifts = []
    for ax in axes:
        half = T.dim_floordiv(x.shape[_ax(ax, x.ndim)], 2)
        half = sign * half if isinstance(half, int) else _u("multiply", ops.dimsize(half), sign)
        shifts.append(half)
    return IMPLS["roll"](x, tuple(shifts), axes) if axes else x


def fftshift(x, axes=None):
    return _shift(x, axes, 1)


def ifftshift(x, axes=None):
    return _shift(x, axes, -1)


def _freq_spacing(n, d):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer, T.Dim)):
        raise ValueError("n should be an integer")
    return _u("divide", 1.0, _u("multiply", ops.dimsize(n) if isinstance(n, T.Dim) else int(n), ops.as_value(d)))


def fftfreq(n, d=1.0, device=None):
    """numpy.fft.fftfreq with a traced spacing ``d``: [0, 1, ..., -(n // 2), ..., -1] / (n * d)."""
    i = iota(n)
    half = T.dim_floordiv(n - 1, 2) + 1
    k = _u("where", _u("less", i, ops.dimsize(half) if isinstance(half, T.Dim) else half),
           i, _u("subtract", i, ops.dimsize(n) if isinstance(n, T.Dim) else int(n)))
    return _u("multiply", k, _freq_spacing(n, d))


def rfftfreq(n, d=1.0, device=None):
    """numpy.fft.rfftfreq with a traced spacing ``d``: [0, 1, ..., n // 2] / (n * d)."""
    return _u("multiply", iota(T.dim_floordiv(n, 2) + 1), _freq_spacing(n, d))


fftfreq.takes_scalars = rfftfreq.takes_scalars = True  # n is a length, not an array


def _all_axes(kind, name):
    """fftn-style functions default to every axis (numpy's axes=None)."""
    def f(a, s=None, axes=None, norm=None, out=None):
        nd = parts(a)[0].ndim
        ax = tuple(range(nd)) if axes is None and s is None else axes
        return kind(name, False if "i" not in name[:2] else True, ax)(a, s, ax, norm, out) \
            if kind is _nd else kind(name, ax)(a, s, ax, norm, out)
    f.__name__ = name
    return f


FFT_IMPLS.update(fftn=_all_axes(_nd, "fftn"), ifftn=_all_axes(_nd, "ifftn"), rfftn=_all_axes(_rnd, "rfftn"),
                 irfftn=_all_axes(_irnd, "irfftn"), hfft=hfft, ihfft=ihfft, fftshift=fftshift, ifftshift=ifftshift,
                 fftfreq=fftfreq, rfftfreq=rfftfreq)
for _n, _f in FFT_IMPLS.items():
    IMPLS[_n] = COMPLEX_IMPLS[_n] = _f
