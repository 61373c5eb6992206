"""The kernel plan: what an optimized Graph becomes before any backend sees it.

A ``Plan`` is a list of buffers and an ordered list of steps over them. The steps are loop kernels (fused
elementwise work and reductions, see ``Kernel``), copies that materialize views, BLAS matmuls and scatter-adds.
Every backend lowers the same Plan; ``lower/fuse.py`` builds it, ``lower/memory.py`` plans buffer reuse over it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from ..ir.graph import Equation, Graph


# ------------------------------------------------------------------------------------------------ buffers
class BufferKind(str, enum.Enum):
    """Who allocates a buffer and how long it lives (a str so that it prints as it reads)."""

    INPUT = "input"    # an argument array: the caller's memory
    OUTPUT = "output"  # returned to the caller: allocated per call, never reused inside it
    TEMP = "temp"      # an intermediate: allocated per call, may share memory with a dead temp (lower/memory.py)
    CONST = "const"    # a constant array of the graph, baked into the executable
    FLAG = "flag"      # one int64 set by gathers and scatters when an index is out of bounds


@dataclass
class Buffer:
    """One array the program reads or writes; ``shape`` may hold symbolic Dims."""
    id: int
    kind: BufferKind
    dtype: np.dtype
    shape: tuple
    input_index: int | None = None      # INPUT: which argument
    const: np.ndarray | None = None     # CONST: the contents
    output_indices: list = field(default_factory=list)  # OUTPUT: the graph outputs it holds (repeats share one)


@dataclass(frozen=True)
class Access:
    """A strided view of a buffer: element (i0, i1, ...) lives at offset + sum(i_k * strides[k])."""
    buf: int
    shape: tuple
    strides: tuple
    offset: object = 0


def contiguous_strides(shape) -> tuple:
    """C-order strides in elements; size-1 dims get stride 0, so a broadcast reads them like any other."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(0 if d == 1 else acc)
        acc = acc * d if not (isinstance(acc, int) and acc == 1) else d
    return tuple(reversed(strides))


def contiguous_access(buf: int, shape) -> Access:
    """The whole of a fresh buffer, in C order."""
    return Access(buf, tuple(shape), contiguous_strides(shape), 0)


# ------------------------------------------------------------------------------------------------ kernels
class Level(str, enum.Enum):
    """Where in a kernel's loop nest an operation runs."""

    INNER = "inner"  # inside the phase's loop over the reduced axes (every element of the domain)
    TAIL = "tail"    # after that loop, once per outer iteration (reduction results and work on them)


@dataclass
class KOp:
    """One equation inside a kernel, with its placement."""
    eqn: Equation | None
    phase: int
    level: Level
    axes: tuple  # domain axis of each output dim (None for size-1 dims)
    in_axes: tuple | None = None  # reductions: domain axis of each input dim


@dataclass
class Kernel:
    """A loop nest over ``domain``. The reduced axes (``red_axes``, possibly none) are the inner loops, the other
    (outer) axes the outer ones; the first outer axis is split across threads. Inside one outer iteration the
    kernel runs *phases*: phase p is an inner loop computing elementwise values and accumulating reductions,
    then a tail of work on the reduction results. A row softmax is one kernel: max (phase 0), exp + sum (phase 1),
    divide (phase 2)."""
    domain: tuple
    red_axes: tuple = ()
    ops: list = field(default_factory=list)  # KOps in execution order
    stores: list = field(default_factory=list)  # (Value, Access): written where the value is computed
    closed: bool = False  # no more work may join (set while planning)
    scalars: dict = field(default_factory=dict)  # value id -> ScalarConst | DimLength this kernel stores
    # column mode: the reduced axes lead and the kept ones trail (``x.sum(axis=0)``); the loops then run reduced
    # axes outside and kept axes inside, over contiguous memory, accumulating into one buffer per reduction
    column: bool = False
    column_accs: dict = field(default_factory=dict)  # reduction output value id -> accumulator buffer id
    # split full reduction: the first reduced axis is cut into ``chunks`` pieces (threads take chunks); each
    # reduction leaves one raw accumulator per chunk in ``partials`` and the next step combines them
    chunks: int = 0
    partials: dict = field(default_factory=dict)  # reduction output value id -> partials buffer id
    epilogue: bool = False  # combines a split reduction's partials: part of the kernel before it

    @property
    def outer_axes(self) -> tuple:
        return tuple(a for a in range(len(self.domain)) if a not in self.red_axes)

    @property
    def nphases(self) -> int:
        return 1 + max((o.phase for o in self.ops), default=0)

    @property
    def eqns(self) -> list:
        return [o.eqn for o in self.ops]


@dataclass
class CopyStep:
    """dst = src, elementwise over src.shape (materializes a view)."""
    src: Access
    dst: Access


@dataclass
class MatmulStep:
    """out = alpha * (a @ b) + beta * out: beta is 1 when the matmul is folded into an update ``D - c * (a @ b)``
    (a CopyStep writes D into out first), which saves BLAS zeroing out and a kernel pass over the product."""
    a: Access
    b: Access
    out: Access
    dtype: np.dtype
    eqn: Equation | None = None
    alpha: float = 1.0
    beta: float = 0.0


@dataclass
class ScatterAddStep:
    """out = zeros; out[idx along axis] += g (numpy's ``np.add.at``); bad indices set the plan's flag."""
    g: Access
    idx: Access
    out: Access
    axis: int
    eqn: Equation | None = None


Step = Union[Kernel, CopyStep, MatmulStep, ScatterAddStep]


# ------------------------------------------------------------------------------------------------ where values live
# (plain slotted records, not frozen ones: the planner makes one per equation, and a frozen dataclass's
# constructor is several times slower)
@dataclass(slots=True)
class InBuffer:
    """The value is in memory, read through ``access`` (an input, a constant, or stored by an earlier step)."""
    access: Access


@dataclass(slots=True)
class ScalarConst:
    """A 0-d constant: an immediate in every kernel that reads it."""
    value: Any
    dtype: np.dtype


@dataclass(slots=True)
class DimLength:
    """A length of the input shapes used as a value (``dimsize``): computed from the symbols at run time."""
    dim: Any


@dataclass(slots=True, eq=False)
class Fused:
    """Computed inside ``kernel`` by ``kop`` and never stored: only that kernel's later ops read it."""
    kernel: Kernel
    kop: KOp


@dataclass(slots=True, eq=False)
class FusedAndStored:
    """Computed inside ``kernel`` at inner level and also stored to ``access``, because a later phase of the same
    kernel (or a later step) reads it back rather than computing it twice."""
    kernel: Kernel
    kop: KOp
    access: Access


Source = Union[InBuffer, ScalarConst, DimLength, Fused, FusedAndStored]
IN_MEMORY = (InBuffer, FusedAndStored)  # sources with an ``access`` a step can read


def memory_access(src: Source | None) -> Access | None:
    """The Access holding the value, for a value in memory; None for immediates and fused values."""
    return src.access if isinstance(src, IN_MEMORY) else None


# ------------------------------------------------------------------------------------------------ plan
@dataclass
class Plan:
    """Buffers and the ordered steps over them that compute ``graph``'s outputs."""
    graph: Graph
    buffers: list  # Buffer, indexed by id
    steps: list  # Step, in execution order
    outputs: list  # buffer id holding each graph output (an output listed twice names one buffer twice)
    sources: dict  # value id -> Source: where each value of the graph lives
    flag: int | None = None  # buffer id of the index-error flag

    @property
    def kernel_groups(self) -> list:
        """The equations of each kernel (a split reduction's epilogue joins the kernel before it)."""
        groups = []
        for s in self.steps:
            eqns = s.eqns if isinstance(s, Kernel) else [s.eqn] if getattr(s, "eqn", None) else []
            if getattr(s, "epilogue", False) and groups:
                groups[-1] = groups[-1] + [e for e in eqns if e not in groups[-1]]
            else:
                groups.append(eqns)
        return groups

    @property
    def num_kernels(self) -> int:
        """Loop nests over the data one call runs (a split reduction's 16-element epilogue is part of its kernel)."""
        return sum(1 for s in self.steps if not getattr(s, "epilogue", False))
