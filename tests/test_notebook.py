"""examples/tour.ipynb runs top to bottom in a real Jupyter kernel and shows what it promises."""
import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOK = EXAMPLES / "tour.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after running every cell (once for all tests here), with the cache in a temporary dir."""
    # a kernel spec running this very interpreter, so the kernel sees the same packages as the tests
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / "tracejit-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tracejit tests", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(spec_dir.parents[1]))
    mp.setenv("TRACEJIT_CACHE_DIR", str(tmp_path_factory.mktemp("nbcache")))
    mp.setenv("MPLBACKEND", "Agg")
    mp.delenv("TRACEJIT_TRACEBACK_FILTERING", raising=False)
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="tracejit-test",
                                         resources={"metadata": {"path": str(EXAMPLES)}})
        client.execute()
    finally:
        mp.undo()
    return nb


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _cell(nb, needle):
    """The code cell whose source contains ``needle``."""
    found = [c for c in _code_cells(nb) if needle in c.source]
    assert len(found) == 1, f"expected one cell containing {needle!r}, found {len(found)}"
    return found[0]


def _text(cell):
    """Everything a cell printed or displayed as text/HTML, joined."""
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            parts.append(o.data.get("text/html", "") + o.data.get("text/plain", ""))
        elif o.output_type == "error":
            parts.append(ANSI.sub("", "\n".join(o.traceback)))
    return "\n".join(parts)


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None for c in _code_cells(nb))


def test_every_cell_ran_and_only_the_marked_one_raised(executed):
    for c in _code_cells(executed):
        assert c.execution_count is not None
        errors = [o for o in c.outputs if o.output_type == "error"]
        expected = "raises-exception" in c.metadata.get("tags", [])
        assert bool(errors) == expected, (c.source[:200], [e.get("evalue") for e in errors])


def test_tutorial_examples_print_their_values(executed):
    out = _text(_cell(executed, "add = tj.jit"))
    assert out.splitlines()[0] == "4.0"
    assert "[[0.5        0.73105858]" in out
    assert "[1.0, 0.0]" in out and "[1.0, 4.0]" in out
    assert "misses=1" in out


def test_ir_before_and_after_is_displayed_richly(executed):
    for needle in ("traced = tj.make_ir", "optimized = tj.make_ir"):
        cell = _cell(executed, needle)
        html = [o.data["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
        assert html and "sum[axes=(0,)]" in html[0] and "float64(n0, n1)" in html[0]


def test_explain_is_collapsible_html(executed):
    cell = _cell(executed, "lowered.explain()")
    html = cell.outputs[-1].data["text/html"]
    assert html.count("<details") >= 3 and "kernels:" in html and "pass 1/" in html


def test_concretization_traceback_ends_at_users_line(executed):
    cell = _cell(executed, "def relu_by_hand")
    (err,) = [o for o in cell.outputs if o.output_type == "error"]
    assert err.ename == "ConcretizationError"
    tb = ANSI.sub("", "\n".join(err.traceback))
    frames = re.findall(r"^(?:Cell In\[\d+\], line \d+.*|File .*)$", tb, re.M)
    assert frames[-1].endswith("in relu_by_hand(x)")
    assert "if x.sum() > 0:" in tb.split(frames[-1])[1]
    assert not any("tracejit" in f for f in frames)


def test_gradient_training_plot_and_timings(executed):
    grad_out = _text(_cell(executed, "dlogistic = "))
    assert "matches s * (1 - s): True" in grad_out or "not available" in grad_out
    train = _text(_cell(executed, "from tqdm import tqdm"))
    assert "training: 100%" in train
    final = float(re.search(r"final loss ([0-9.]+)", train).group(1))
    assert final < 0.3
    plot = _cell(executed, "fig.savefig")
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)
    table = _text(_cell(executed, "def best_ms"))
    assert "<table>" in table and table.count("<tr>") == 4 and "False" not in table


def test_cache_cell_reports(executed):
    out = _text(_cell(executed, "from tracejit.backends import cache"))
    assert "first call" in out and "'enabled': True" in out
