"""Seeing what the compiler did: graph pictures (with a clean text fallback), explain(), short tracebacks."""
import contextlib
import io
import re
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

import tracejit as tj
from tracejit import inspect as tji
from tracejit.ir import printing
from tracejit.passes.pipeline import PassRecord

HAS_DOT = printing.dot_program() is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz's dot is not installed")
ROOT = Path(__file__).resolve().parents[1]


def f(x, y):
    return np.exp(-x) * y + 1.0 + np.sum(x, axis=0) + np.arange(4.0)


X, Y = np.ones((3, 4)), np.ones(4)


class FakeExecutable:
    """Stands in for the LLVM backend's executable (kernel grouping, IR and assembly)."""

    def __init__(self, graph, llvm="define void @kernel0() {\n  ret void\n}", asm="kernel0:\n  ret"):
        self.kernel_groups = [graph.eqns[:3], graph.eqns[3:]]
        self.num_kernels = 2
        self._llvm, self._asm = llvm, asm

    def llvm_ir(self):
        return self._llvm

    def asm(self):
        return self._asm


class BrokenExecutable:
    num_kernels = 0

    def llvm_ir(self):
        raise RuntimeError("LLVM said no")

    asm = llvm_ir


@pytest.fixture
def no_dot(monkeypatch):
    monkeypatch.setenv("TRACEJIT_DOT", "off")


# ------------------------------------------------------------------------------------------------ DOT
def test_dot_labels_inputs_constants_outputs():
    g = tj.make_ir(f)(X, Y)
    dot = printing.graph_dot(g)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    # every equation is a node labelled with primitive, dtype and symbolic shape
    assert 'label="exp\\nfloat64(n0, n1)"' in dot
    assert 'label="sum\\naxes=(0,)\\nfloat64(n1,)"' in dot
    assert len(re.findall(r"^\s+e\d+ \[", dot, re.M)) == len(g.eqns)
    # inputs, constants and outputs are drawn differently from equations
    inputs = re.findall(r"^\s+in\d+ \[.*\]$", dot, re.M)
    consts = re.findall(r"^\s+c\d+ \[.*\]$", dot, re.M)
    assert len(inputs) == 2 and all('shape="ellipse"' in ln for ln in inputs)
    assert len(consts) == 2 and all('dashed' in ln for ln in consts)
    assert 'label="1.0\\nfloat64()"' in dot and "const{float64[4]}" in dot
    assert re.search(r"e\d+ -> out0;", dot)
    assert "cluster" not in dot  # no kernel grouping known: no clusters


def test_dot_clusters_from_kernel_groups():
    g = tj.make_ir(f)(X, Y)
    dot = printing.graph_dot(g, kernel_groups=[g.eqns[:2], g.eqns[2:4]])
    assert dot.count("subgraph cluster_kernel") == 2
    body = dot.split("subgraph cluster_kernel0")[1].split("}")[0]
    assert "e0 [" in body and "e1 [" in body and "e2 [" not in body
    assert len(re.findall(r"^\s+e\d+ \[", dot, re.M)) == len(g.eqns)  # each equation drawn once


def test_dot_escapes_quotes_and_backslashes():
    g = tj.make_ir(lambda x: x + 1.0)(np.ones(2))
    g.inputs[0].name = 'we"ird\\name'
    dot = printing.graph_dot(g)
    assert 'we\\"ird\\\\name' in dot


# ------------------------------------------------------------------------------------------------ SVG / HTML
@needs_dot
def test_graph_html_is_a_picture_with_text_folded():
    g = tj.make_ir(f)(X, Y)
    h = g._repr_html_()
    assert "<svg" in h and "</svg>" in h and "<details>" in h
    assert "exp" in h and "float64(n0, n1)" in h
    assert "<?xml" not in h  # inlined, not a document


def test_text_fallback_without_dot(no_dot):
    g = tj.make_ir(f)(X, Y)
    h = g._repr_html_()
    assert h.startswith("<pre") and "<svg" not in h
    assert "exp" in h and "Error" not in h and "Traceback" not in h


def test_text_fallback_when_dot_fails(monkeypatch):
    monkeypatch.setenv("TRACEJIT_DOT", "false")  # a program that exits with status 1
    g = tj.make_ir(lambda x: x * 2.0)(np.ones(2))
    h = printing.graph_html(g)
    assert h.startswith("<pre") and "multiply" in h


def test_text_fallback_for_huge_graphs(monkeypatch):
    monkeypatch.setattr(printing, "MAX_DRAWN_EQUATIONS", 3)
    g = tj.make_ir(f)(X, Y)
    assert printing.graph_svg(g) is None
    assert printing.graph_html(g).startswith("<pre")


def test_lowered_renders_with_kernel_clusters_when_backend_groups(monkeypatch):
    low = tj.jit(f).lower(X, Y)
    low._exe = FakeExecutable(low.optimized)
    assert tji.to_dot(low).count("subgraph cluster_kernel") == 2
    monkeypatch.setenv("TRACEJIT_DOT", "off")
    assert "exp" in low._repr_html_()


def test_lowered_without_kernel_groups_draws_no_clusters():
    low = tj.jit(f).lower(X, Y)
    low._exe = BrokenExecutable()  # a backend that does not say how it grouped equations
    assert "cluster" not in tji.to_dot(low)
    assert low._repr_html_()


def test_lowered_draws_the_real_backends_kernels():
    low = tj.jit(f).lower(X, Y)
    groups = low.executable.kernel_groups
    assert tji.to_dot(low).count("subgraph cluster_kernel") == len([g for g in groups if g])


def test_values_and_lists_of_values_render():
    g = tj.make_ir(f)(X, Y)
    out = g.outputs[0]
    vg = printing.value_graph([out])
    assert len(vg.eqns) == len(g.eqns) and len(vg.inputs) == 2
    assert "exp" in tji.to_html(out)
    assert "exp" in tji.to_html([out])
    with pytest.raises(TypeError, match="cannot show"):
        tji.to_html(42)


def test_to_graphviz_source():
    pytest.importorskip("graphviz")
    src = tji.to_graphviz(tj.make_ir(f)(X, Y))
    assert "digraph" in src.source


# ------------------------------------------------------------------------------------------------ explain
def _lowered_with_log():
    """A Lowered whose pass log has a pass that changed the graph and one that did not."""
    low = tj.jit(f).lower(X, Y)
    g0 = low.traced
    g1 = tj.make_ir(lambda x, y: np.exp(-x) * y + 1.0)(X, Y)
    low.pass_log = [PassRecord("simplify", len(g0.eqns), len(g1.eqns), g1, {"fold-constant": 2, "unused": 0}),
                    PassRecord("cse", len(g1.eqns), len(g1.eqns), g1, {})]
    low.optimized = g1
    return low


def test_explain_text_lists_passes_changes_and_kernels():
    low = _lowered_with_log()
    low._exe = FakeExecutable(low.optimized)
    text = str(low.explain())
    assert text.index("== traced") < text.index("pass 1/2 simplify") < text.index("pass 2/2 cse")
    assert "simplify: 7 -> 4 equations; fold-constant x2" in text
    assert "unused" not in text  # rewrites that did not fire are not listed
    assert "cse: no change (4 equations)" in text
    assert re.search(r"^-\s+%\d+:float64\(n1,\) = sum", text, re.M)  # the diff shows what went away
    assert "== kernels: 2 ==" in text and "kernel 0:" in text and "kernel 1:" in text
    assert "== LLVM IR (3 lines) ==" in text and "define void @kernel0()" in text
    assert "== assembly (2 lines) ==" in text


def test_explain_html_is_collapsible():
    low = _lowered_with_log()
    low._exe = FakeExecutable(low.optimized)
    h = low.explain()._repr_html_()
    assert h.count("<details") >= 5
    assert "simplify: 7 -&gt; 4 equations; fold-constant x2" in h
    assert "LLVM IR (3 lines)" in h and "assembly (2 lines)" in h
    assert "define void @kernel0()" in h


def test_explain_real_pipeline_on_reference_backend(no_dot):
    e = tj.jit(f).lower(X, Y).explain()
    text = str(e)
    for rec in tj.jit(f).lower(X, Y).pass_log:
        assert rec.name in text
    assert "== kernels:" in text
    assert e._repr_html_().startswith('<div class="tracejit-explain">')


def test_explain_survives_backend_failure():
    low = _lowered_with_log()
    low._exe = BrokenExecutable()
    text = str(low.explain())
    assert "compilation failed: RuntimeError: LLVM said no" in text
    assert "LLVM said no" in low.explain()._repr_html_()


# ------------------------------------------------------------------------------------------------ tracebacks
BAD_CELL = """def g(x):
    if x.sum() > 0:
        return x
    return -x
tj.jit(g)(np.ones(3))"""


def _ipython_traceback(monkeypatch, filtering):
    """Run BAD_CELL in an in-process IPython shell; return the traceback IPython printed and the exception."""
    pytest.importorskip("IPython")
    import builtins
    from IPython.core.interactiveshell import InteractiveShell
    monkeypatch.setenv("TRACEJIT_TRACEBACK_FILTERING", filtering)
    had_display = hasattr(builtins, "display")
    shell = InteractiveShell.instance(colors="NoColor")
    try:
        shell.run_cell("import numpy as np, tracejit as tj")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            result = shell.run_cell(BAD_CELL)
    finally:
        InteractiveShell.clear_instance()
        if not had_display and hasattr(builtins, "display"):
            del builtins.display
    assert isinstance(result.error_in_exec, tj.ConcretizationError)
    return buf.getvalue(), result.error_in_exec


def test_ipython_traceback_ends_at_users_line(monkeypatch):
    text, err = _ipython_traceback(monkeypatch, "on")
    frames = re.findall(r"^(?:Cell In\[\d+\], line \d+.*|File .*)$", text, re.M)
    assert len(frames) == 2 and frames[-1].endswith("line 2, in g(x)")
    assert "----> 2     if x.sum() > 0:" in text
    assert "tracejit" + "/" not in text.replace("tracejit as tj", "")  # no tracejit file is shown
    assert text.index("tj.jit(g)(np.ones(3))") < text.index("if x.sum() > 0")
    assert traceback.extract_tb(err.__traceback__)[-1].line.strip() == "if x.sum() > 0:"


def test_traceback_filtering_off_shows_tracejit_frames(monkeypatch):
    text, _ = _ipython_traceback(monkeypatch, "off")
    assert str(Path("tracejit") / "trace") in text or "tracer.py" in text


def test_plain_python_traceback_ends_at_users_line(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text("import numpy as np, tracejit as tj\n" + BAD_CELL + "\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    tb = r.stderr
    assert "ConcretizationError" in tb
    files = re.findall(r'File "([^"]+)", line (\d+)', tb)
    assert files[-1] == (str(script), "3")  # `if x.sum() > 0:` is line 3 of the script
    # plain Python cannot hide frames: only the one re-raising frame of tracejit remains (IPython hides it)
    assert len([p for p, _ in files if p != str(script)]) <= 1
