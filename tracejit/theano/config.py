"""How a Theano user chooses what ``function`` compiles with: ``config`` flags and ``Mode``.

    tj.theano.config.strict_ieee = True                       # every function from now on
    function([x], x - x, mode=Mode(strict_ieee=True))         # one function: keeps x - x (nan for inf)
    function([x], log(1 + x), mode=Mode().excluding("stabilize"))   # a pipeline stage switched off by name

``THEANO_FLAGS="strict_ieee=True,optimizer_excluding=stabilize"`` in the environment sets the flags at import,
as Theano reads its own. Both end as one ``tracejit.compile.CompileOptions``: ``jit(strict_ieee=...,
passes=...)`` and ``function`` reach the same switches, and every function gets jit's tiers.
"""
from __future__ import annotations

import os

from ..compile import CompileOptions, check_device

# Theano's optimizer names -> the passes run (None: the default pipeline). fast_compile skips the stability
# rewrites and keeps the canonicalizations; None compiles the graph as written.
OPTIMIZERS = {"fast_run": None, "fast_compile": ("canonicalize", "cleanup"), None: (), "None": ()}
MODES = {"FAST_RUN": "fast_run", "FAST_COMPILE": "fast_compile"}


class Config:
    """Theano's ``config`` flags that tracejit reads. ``floatX`` is what the dtype name 'floatX' means here."""

    def __init__(self):
        self.strict_ieee = False  # keep IEEE results for inf, nan and -0.0 (see passes/simplify.py)
        self.optimizer_excluding = ""  # pass or stage names to switch off, separated by ':' (Theano's flag)
        self.mode = "FAST_RUN"  # the mode of a function given no mode=
        self.device = "cpu"
        self.floatX = "float64"

    def read_flags(self, flags: str):
        """Apply a THEANO_FLAGS string (``name=value,name=value``); flags tracejit does not know are ignored."""
        for item in filter(None, (part.strip() for part in flags.split(","))):
            name, _, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if name == "strict_ieee":
                self.strict_ieee = value.lower() in ("1", "true", "yes", "on")
            elif name in ("optimizer_excluding", "mode", "floatX"):
                setattr(self, name, value)

    def __repr__(self):
        return (f"<tracejit.theano.config strict_ieee={self.strict_ieee} optimizer_excluding="
                f"{self.optimizer_excluding!r} mode={self.mode!r} device={self.device!r}>")


config = Config()
config.read_flags(os.environ.get("THEANO_FLAGS", ""))


class Mode:
    """Theano's compilation mode: which optimizer runs, which of its passes or stages are excluded, and
    (tracejit's own switch) ``strict_ieee``: None follows ``config.strict_ieee``."""

    def __init__(self, linker=None, optimizer="fast_run", strict_ieee=None, excluded=()):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"Mode: unknown optimizer {optimizer!r}; use one of 'fast_run', 'fast_compile' or None")
        if strict_ieee not in (None, True, False):
            raise TypeError(f"Mode: strict_ieee must be True, False or None, got {strict_ieee!r}")
        self.linker = linker  # accepted for Theano's scripts; tracejit has one linker (LLVM or CUDA)
        self.optimizer = optimizer
        self.strict_ieee = strict_ieee
        self.excluded = frozenset(excluded)

    def excluding(self, *names) -> "Mode":
        """This mode without the passes or stages named (``Mode().excluding('stabilize')``)."""
        return Mode(self.linker, self.optimizer, self.strict_ieee, self.excluded | set(names))

    def including(self, *names) -> "Mode":
        """This mode with the named passes or stages excluded before switched on again."""
        return Mode(self.linker, self.optimizer, self.strict_ieee, self.excluded - set(names))

    def __repr__(self):
        return (f"Mode(optimizer={self.optimizer!r}, strict_ieee={self.strict_ieee}, "
                f"excluded={sorted(self.excluded)})")


def as_mode(mode) -> Mode:
    """A ``mode=`` argument (None, a Mode, or a name such as 'FAST_RUN') as a Mode."""
    if mode is None:
        mode = config.mode
    if isinstance(mode, Mode):
        return mode
    if isinstance(mode, str) and mode.upper() in MODES:
        return Mode(optimizer=MODES[mode.upper()])
    raise ValueError(f"mode={mode!r} is not a mode tracejit knows: use 'FAST_RUN', 'FAST_COMPILE' or a "
                     f"tracejit.theano.Mode")


def compile_options(mode=None, device=None) -> CompileOptions:
    """What a Theano function compiles with: its mode over the global ``config`` flags."""
    m = as_mode(mode)
    excluded = set(m.excluded) | {n for n in config.optimizer_excluding.split(":") if n.strip()}
    strict = config.strict_ieee if m.strict_ieee is None else m.strict_ieee
    return CompileOptions(device=check_device(config.device if device is None else device), strict_ieee=bool(strict),
                          passes=OPTIMIZERS[m.optimizer], excluding=frozenset(excluded))


__all__ = ["Config", "config", "Mode", "as_mode", "compile_options"]
