"""``theano.scan_module``: where Theano kept ``scan`` and ``until`` (``from theano.scan_module import until``)."""
from .scan import scan, until

__all__ = ["scan", "until"]
