"""The project's exception types, and the frame filter that makes tracebacks end at the user's line."""
from __future__ import annotations

import os


class ConcretizationError(TypeError):
    """A traced value was used where Python needs a concrete one (``if x > 0``, ``float(x)``, ...)."""


class UnsupportedError(NotImplementedError):
    """A numpy function or feature tracejit does not implement."""


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


def show_all_frames() -> bool:
    return os.environ.get("TRACEJIT_TRACEBACK_FILTERING", "on").lower() in ("off", "0", "no", "false")


def filter_traceback(tb):
    """Drop tracejit's own frames from a traceback (``TRACEJIT_TRACEBACK_FILTERING=off`` keeps them)."""
    if tb is None or show_all_frames():
        return tb
    frames = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_PKG_DIR):
            frames.append(tb)
        tb = tb.tb_next
    new_tb = None
    for t in reversed(frames):
        new_tb = type(t)(new_tb, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return new_tb


def reraise_filtered(exc: BaseException):
    """Re-raise ``exc`` with tracejit's frames removed from its traceback."""
    raise exc.with_traceback(filter_traceback(exc.__traceback__)) from exc.__cause__


__all__ = ["ConcretizationError", "UnsupportedError", "filter_traceback", "reraise_filtered"]
