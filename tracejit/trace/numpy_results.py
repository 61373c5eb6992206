"""numpy 2's named-tuple results (``np.linalg.eigh`` -> EighResult, ``np.unique_all`` -> UniqueAllResult, ...).
numpy's own classes where numpy has them, so ``isinstance`` checks, field names and pytree round trips match what
numpy returns for plain arrays; a twin with the same fields on an older numpy."""
from __future__ import annotations

from collections import namedtuple

import numpy as np


def _numpy_class(module, name, fields):
    cls = getattr(module, name, None) if module is not None else None
    return cls if cls is not None else namedtuple(name, fields)


def _module(path):
    try:
        return __import__(path, fromlist=["_"])
    except ImportError:
        return None


_LINALG = _module("numpy.linalg._linalg")
_SETOPS = _module("numpy.lib._arraysetops_impl")

EigResult = _numpy_class(_LINALG, "EigResult", "eigenvalues eigenvectors")
EighResult = _numpy_class(_LINALG, "EighResult", "eigenvalues eigenvectors")
QRResult = _numpy_class(_LINALG, "QRResult", "Q R")
SlogdetResult = _numpy_class(_LINALG, "SlogdetResult", "sign logabsdet")
SVDResult = _numpy_class(_LINALG, "SVDResult", "U S Vh")
UniqueAllResult = _numpy_class(_SETOPS, "UniqueAllResult", "values indices inverse_indices counts")
UniqueCountsResult = _numpy_class(_SETOPS, "UniqueCountsResult", "values counts")
UniqueInverseResult = _numpy_class(_SETOPS, "UniqueInverseResult", "values inverse_indices")

HAS_UNIQUE_ALL = hasattr(np, "unique_all")
