"""Looking at what the compiler did: ``jitted.lower(*args).explain()`` and graph pictures.

``explain`` returns an :class:`Explanation`: the traced graph, the graph after each pass of the pipeline with
what the pass changed (rewrites fired and their counts, a diff of the SSA text), then the compiled kernels with
their LLVM IR and assembly. ``print(e)`` gives terminal text; in Jupyter it displays as collapsible HTML sections
with the graphs drawn by graphviz (see ``tracejit.ir.printing`` for the picture and its text fallback).

Tracebacks: errors raised inside tracejit (e.g. ``ConcretizationError`` for ``if x > 0`` on a traced value) have
tracejit's own frames removed, so the traceback ends at your line. ``TRACEJIT_TRACEBACK_FILTERING=off`` keeps
every frame (for debugging tracejit itself).
"""
from __future__ import annotations

import difflib
import html
from dataclasses import dataclass, field

from .ir import printing

__all__ = ["explain", "Explanation", "to_html", "to_dot", "to_graphviz", "kernel_groups", "lowered_html"]


# ------------------------------------------------------------------------------------------------ objects -> graph
def _as_graph(obj):
    """A Graph for anything tracejit can show: Graph, Lowered, Value, tracer or symbolic variable."""
    from .ir.graph import Graph, Value
    if isinstance(obj, Graph):
        return obj
    optimized = getattr(obj, "optimized", None)
    if isinstance(optimized, Graph):
        return optimized
    for attr in ("_tj_value", "value", "variable"):
        v = getattr(obj, attr, None)
        if isinstance(v, Value):
            obj = v
            break
    if isinstance(obj, Value):
        return printing.value_graph([obj])
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(_as_value(x), Value) for x in obj):
        return printing.value_graph([_as_value(x) for x in obj])
    raise TypeError(f"cannot show an object of type {type(obj).__name__}: expected a tracejit Graph, Lowered, "
                    f"Value or symbolic variable")


def _as_value(x):
    from .ir.graph import Value
    if isinstance(x, Value):
        return x
    for attr in ("_tj_value", "value", "variable"):
        v = getattr(x, attr, None)
        if isinstance(v, Value):
            return v
    return None


def kernel_groups(lowered, compile=True):
    """The equations of each compiled kernel (the backend's ``executable.kernel_groups``), or None."""
    exe = getattr(lowered, "_exe", None)
    if exe is None and compile:
        try:
            exe = lowered.executable
        except Exception:  # noqa: BLE001 - a picture must not fail because the backend did
            return None
    return getattr(exe, "kernel_groups", None) if exe is not None else None


def to_dot(obj) -> str:
    """graphviz DOT source for a Graph, Lowered (with kernel clusters) or symbolic variable."""
    groups = kernel_groups(obj) if hasattr(obj, "pass_log") else None
    return printing.graph_dot(_as_graph(obj), groups)


def to_graphviz(obj):
    """A ``graphviz.Source`` (from the ``graphviz`` package) to render to a file: ``.render('g', format='pdf')``."""
    try:
        import graphviz
    except ImportError:
        raise ImportError("to_graphviz needs the graphviz Python package (pip install graphviz) and the dot "
                          "program (apt-get install graphviz); to_dot(obj) gives the DOT text without them") from None
    return graphviz.Source(to_dot(obj))


def to_html(obj) -> str:
    """Jupyter HTML for a Graph, Lowered or symbolic variable (picture if ``dot`` is installed, else text)."""
    if hasattr(obj, "pass_log"):
        return lowered_html(obj)
    return printing.graph_html(_as_graph(obj))


def lowered_html(lowered) -> str:
    """The optimized graph with each compiled kernel drawn as a cluster."""
    return printing.graph_html(lowered.optimized, kernel_groups(lowered))


# ------------------------------------------------------------------------------------------------ explain
@dataclass
class Stage:
    """The graph after one pass, and what the pass changed."""
    name: str
    graph: object
    before: int
    after: int
    changes: dict = field(default_factory=dict)
    diff: list = field(default_factory=list)  # unified diff lines of the SSA text

    @property
    def changed(self) -> bool:
        return bool(self.diff) or any(self.changes.values())

    def summary(self) -> str:
        counts = f"{self.before} -> {self.after} equations" if self.before != self.after else \
            f"{self.after} equations"
        fired = ", ".join(f"{k} x{v}" for k, v in self.changes.items() if v)
        if not self.changed:
            return f"{self.name}: no change ({counts})"
        return f"{self.name}: {counts}" + (f"; {fired}" if fired else "")


@dataclass
class Kernels:
    count: int
    groups: list  # list of lists of SSA lines, or None when the backend does not say
    llvm_ir: str
    asm: str
    error: str = ""


class Explanation:
    """What the compiler did to one function: printable in a terminal, collapsible HTML in Jupyter."""

    def __init__(self, traced, stages, kernels):
        self.traced = traced
        self.stages = stages
        self.kernels = kernels

    @property
    def optimized(self):
        return self.stages[-1].graph if self.stages else self.traced

    # ---------------------------------------------------------------------------------------- text
    def __str__(self):
        out = [f"== traced: {len(self.traced.eqns)} equations ==", printing.graph_text(self.traced), ""]
        for title, s in self._sections():
            out.append(f"== {title} ==")
            if s is not None and s.diff:
                out.extend(s.diff)
            out.append("")
        out += [f"== optimized: {len(self.optimized.eqns)} equations ==", printing.graph_text(self.optimized), ""]
        out.extend(self._kernel_text())
        return "\n".join(out).rstrip() + "\n"

    __repr__ = __str__

    def _sections(self):
        """(title, stage) per pass that changed the graph; (title, None) per run of passes that did not."""
        n, i, out = len(self.stages), 0, []
        while i < n:
            s = self.stages[i]
            if s.changed:
                out.append((f"pass {i + 1}/{n} {s.summary()}", s))
                i += 1
                continue
            j = i
            while j + 1 < n and not self.stages[j + 1].changed:
                j += 1
            if j == i:
                out.append((f"pass {i + 1}/{n} {s.summary()}", None))
            else:
                names = ", ".join(st.name for st in self.stages[i:j + 1])
                out.append((f"passes {i + 1}-{j + 1}/{n} ({names}): no change ({s.after} equations)", None))
            i = j + 1
        return out

    def _kernel_text(self):
        k = self.kernels
        out = [f"== kernels: {k.count} =="]
        if self._kernel_note():
            out.append(self._kernel_note())
        if k.groups:
            for i, lines in enumerate(k.groups):
                out.append(f"kernel {i}:")
                out.extend("    " + ln for ln in lines)
        if k.llvm_ir:
            out += ["", f"== LLVM IR ({_nlines(k.llvm_ir)} lines) ==", k.llvm_ir.rstrip()]
        if k.asm:
            out += ["", f"== assembly ({_nlines(k.asm)} lines) ==", k.asm.rstrip()]
        return out

    def _kernel_note(self) -> str:
        if self.kernels.error:
            return f"(compilation failed: {self.kernels.error})"
        if not self.kernels.llvm_ir:
            return "(no machine code: this graph runs on the numpy reference interpreter)"
        return ""

    # ---------------------------------------------------------------------------------------- HTML
    def _repr_html_(self):
        parts = ['<div class="tracejit-explain">',
                 _details(f"traced: {len(self.traced.eqns)} equations", printing.graph_html(self.traced))]
        for title, s in self._sections():
            if s is None:
                parts.append(f"<div style='margin-left:1.2em; color:#777'>{html.escape(title)}</div>")
                continue
            body = _diff_html(s.diff) + _details("graph after this pass", printing.graph_html(s.graph))
            parts.append(_details(title, body))
        k = self.kernels
        groups = self._groups_for_picture()
        parts.append(_details(f"optimized: {len(self.optimized.eqns)} equations, {k.count} kernels",
                              printing.graph_html(self.optimized, groups), open_=True))
        kern = printing.text_html(self._kernel_note()) if self._kernel_note() else ""
        if k.groups:
            kern += printing.text_html("\n".join(f"kernel {i}:\n" + "\n".join("    " + ln for ln in lines)
                                                 for i, lines in enumerate(k.groups)))
        if k.llvm_ir:
            kern += _details(f"LLVM IR ({_nlines(k.llvm_ir)} lines)", printing.text_html(k.llvm_ir))
        if k.asm:
            kern += _details(f"assembly ({_nlines(k.asm)} lines)", printing.text_html(k.asm))
        parts.append(_details(f"kernels: {k.count}", kern or printing.text_html("(none)")))
        parts.append("</div>")
        return "".join(parts)

    def _groups_for_picture(self):
        return getattr(self, "_eqn_groups", None)


def _nlines(s: str) -> int:
    return s.count("\n") + (0 if s.endswith("\n") else 1)


def _details(summary: str, body: str, open_=False) -> str:
    return (f"<details{' open' if open_ else ''}><summary><b>{html.escape(summary)}</b></summary>"
            f"<div style='margin-left:1.2em'>{body}</div></details>")


def _diff_html(diff) -> str:
    if not diff:
        return ""
    colors = {"+": "#e6ffec", "-": "#ffebe9", "@": "#ddf4ff"}
    rows = []
    for ln in diff:
        bg = colors.get(ln[:1], "transparent") if not ln.startswith(("+++", "---")) else "transparent"
        rows.append(f"<div style='background:{bg}'>{html.escape(ln) or '&nbsp;'}</div>")
    return "<pre style='line-height:1.25'>" + "".join(rows) + "</pre>"


def _diff(before, after, name) -> list:
    a = printing.graph_text(before, name).splitlines()
    b = printing.graph_text(after, name).splitlines()
    return list(difflib.unified_diff(a, b, "before", "after", n=1, lineterm=""))


def explain(lowered) -> Explanation:
    """The graph after each pass (what changed), then the kernels with LLVM IR and assembly."""
    stages, prev = [], lowered.traced
    stable = printing.namer(lowered.traced)  # one namer for all diffs: a value keeps its name across passes
    for rec in getattr(lowered, "pass_log", None) or ():
        stages.append(Stage(rec.name, rec.graph, rec.before, rec.after, dict(rec.changes or {}),
                            _diff(prev, rec.graph, stable)))
        prev = rec.graph
    count, groups, eqn_groups, llvm_ir, asm, error = 0, None, None, "", "", ""
    try:
        exe = lowered.executable
        count = getattr(exe, "num_kernels", 0)
        eqn_groups = getattr(exe, "kernel_groups", None)
        llvm_ir = lowered.as_text("llvm") or ""
        asm = lowered.as_text("asm") or ""
    except Exception as e:  # noqa: BLE001 - explain is for looking; a backend failure is part of the story
        error = f"{type(e).__name__}: {e}"
    if eqn_groups:
        name = printing.namer(lowered.optimized)
        for e in lowered.optimized.eqns:  # number values in graph order so kernels match the printed graph
            name(e.out)
        groups = [[printing.eqn_text(e, name) for e in g] for g in eqn_groups]
    ex = Explanation(lowered.traced, stages, Kernels(count, groups, llvm_ir, asm, error))
    ex._eqn_groups = eqn_groups
    return ex
