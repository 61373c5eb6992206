"""One compile path (issue 18): jit, Lowered, make_ir, Theano's function and tensor.grad all optimize and build
executables through tracejit.compile, so strict_ieee, pass selection and tiers reach every one of them."""
import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tracejit as tj
from tracejit import tensor
from tracejit.backends.cpu import tiers
from tracejit.compile import CompileOptions, pass_order
from tracejit.theano import In, Mode, config

PACKAGE = Path(tj.__file__).parent
ROOT = PACKAGE.parent


def _ops(f):
    return [e.prim for e in f.graph.eqns]


# ------------------------------------------------------------------------------------------------ the one path
# Entry points of the optimizer and of the backends; only compile.py may call them from outside the
# optimizer's and the backends' own packages.
OPTIMIZER = {"optimize", "optimize_with_log"}
BACKENDS = {"LLVMExecutable", "TieredExecutable", "InterpretedExecutable", "CudaExecutable", "compile_graph",
            "compile_graph_cuda", "plan_graph"}
INSIDE = {"passes", "codegen", "lower", "backends"}


def _compile_calls(path):
    """(line, name) of each import or attribute use of an optimizer or backend entry point in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module.split(".")[-1]
            for alias in node.names:
                if (mod == "pipeline" and alias.name in OPTIMIZER) or alias.name in BACKENDS:
                    found.append((node.lineno, alias.name))
        elif isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else ""
            if node.attr in BACKENDS or (node.attr in OPTIMIZER and "pipeline" in base):
                found.append((node.lineno, node.attr))
    return found


def test_compile_py_is_the_only_caller_of_the_optimizer_and_the_backends():
    callers = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in INSIDE or rel == Path("compile.py"):
            continue
        calls = _compile_calls(path)
        if calls:
            callers[str(rel)] = calls
    assert callers == {}, f"optimize/plan/backend reached outside tracejit/compile.py: {callers}"
    assert _compile_calls(PACKAGE / "compile.py"), "the scan finds compile.py's own calls"


def test_trace_package_holds_no_theano_function_or_compiler():
    for path in (PACKAGE / "trace").glob("*.py"):
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & {"function", "Function", "shared", "SharedVariable", "debugprint"}, path
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert "codegen" not in node.module and "pipeline" not in node.module, (path, node.module)


def test_modules_stay_under_600_lines():
    for path in list((PACKAGE / "theano").glob("*.py")) + [PACKAGE / "compile.py", PACKAGE / "trace" / "symbolic.py"] \
            + list((PACKAGE / "backends" / "cpu").rglob("*.py")) + list((PACKAGE / "lower").glob("*.py")):
        assert len(path.read_text().splitlines()) <= 600, path


# ------------------------------------------------------------------------------------------------ options
def test_options_check_their_arguments():
    with pytest.raises(ValueError, match="unknown pass 'simplfy'"):
        CompileOptions(passes=["simplfy"])
    with pytest.raises(ValueError, match="unknown pass"):
        CompileOptions(excluding={"fusion_of_everything"})
    with pytest.raises(TypeError, match="strict_ieee"):
        CompileOptions(strict_ieee="yes")
    with pytest.raises(TypeError, match="excluding"):
        CompileOptions(excluding="stabilize")
    with pytest.raises(ValueError, match="unknown device"):
        tj.jit(lambda x: x, device="tpu")
    with pytest.raises(ValueError, match="optimizer"):
        Mode(optimizer="o4")
    x = tensor.dvector("x")
    with pytest.raises(ValueError, match="DebugMode"):
        tj.function([x], x + 1, mode="DebugMode")


def test_excluding_a_stage_drops_its_passes():
    assert "stabilize" not in pass_order(CompileOptions(excluding={"stabilize"}))
    assert pass_order(CompileOptions(excluding={"canonicalize"})) == ["stabilize", "narrow", "dce", "regions", "hoist"]
    assert pass_order(CompileOptions(passes=["cse"], excluding={"dce"})) == ["cse"]


# ------------------------------------------------------------------------------------------------ Theano functions
def test_strict_ieee_reaches_theano_functions():
    x = tensor.dvector("x")
    fast = tj.function([x], x - x)
    strict = tj.function([x], x - x, mode=Mode(strict_ieee=True))
    assert "subtract" not in _ops(fast)
    assert "subtract" in _ops(strict)
    inf = np.array([np.inf, 1.0])
    np.testing.assert_array_equal(fast(inf), [0.0, 0.0])
    np.testing.assert_array_equal(strict(inf), [np.nan, 0.0])
    assert strict.options.strict_ieee and not fast.options.strict_ieee


def test_config_flag_sets_strict_ieee_for_functions_without_a_mode(monkeypatch):
    monkeypatch.setattr(config, "strict_ieee", True)
    x = tensor.dvector("x")
    assert "subtract" in _ops(tj.function([x], x - x))
    assert "subtract" not in _ops(tj.function([x], x - x, mode=Mode(strict_ieee=False)))


def test_a_stage_switched_off_by_name_keeps_log_1_plus_x():
    x = tensor.dvector("x")
    plain = tj.function([x], np.log(1 + x))
    kept = tj.function([x], np.log(1 + x), mode=Mode().excluding("stabilize"))
    assert "log1p" in _ops(plain) and "log1p" not in _ops(kept)
    assert "log" in _ops(kept)
    tiny = np.array([1e-18])
    assert plain(tiny)[0] == 1e-18 and kept(tiny)[0] == 0.0  # the stable form is the accurate one
    assert _ops(tj.function([x], np.log(1 + x), mode=Mode().excluding("stabilize").including("stabilize"))) \
        == _ops(plain)


def test_optimizer_excluding_flag_and_fast_compile(monkeypatch):
    x = tensor.dvector("x")
    monkeypatch.setattr(config, "optimizer_excluding", "stabilize")
    assert "log1p" not in _ops(tj.function([x], np.log(1 + x)))
    monkeypatch.setattr(config, "optimizer_excluding", "")
    assert "log1p" not in _ops(tj.function([x], np.log(1 + x), mode="FAST_COMPILE"))
    assert "log1p" in _ops(tj.function([x], np.log(1 + x), mode="FAST_RUN"))


def test_tiers_reach_theano_functions(monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")  # a disk hit would load the optimized tier at once
    x = tensor.dvector("x")
    f = tj.function([x], np.tanh(x) * np.exp(-x * x) + np.sin(x))
    exe = f.executable
    assert isinstance(exe, tiers.TieredExecutable) and exe.tier == 0
    assert {"passes", "plan", "total"} <= exe.compile_stats.keys()
    a = np.linspace(-2, 2, 101)
    want = np.tanh(a) * np.exp(-a * a) + np.sin(a)
    np.testing.assert_allclose(f(a), want, rtol=1e-13)
    np.testing.assert_allclose(f(a), want, rtol=1e-13)  # second call: the optimized tier starts compiling
    exe.wait()
    assert exe.tier == 1
    np.testing.assert_allclose(f(a), want, rtol=1e-13)  # the generated call path now runs the optimized code


def test_lowered_shows_the_optimized_tier_only():
    low = tj.jit(lambda x: np.exp(x) + np.sin(x)).lower(np.ones(3))
    assert not isinstance(low.executable, tiers.TieredExecutable) and low.executable.tier == 1


def test_tensor_grad_follows_the_config(monkeypatch):
    x = tensor.dscalar("x")
    cost = np.log(1 - tensor.nnet.sigmoid(x))  # its stable form, -softplus(x), is what grad differentiates
    assert tj.pp(tensor.grad(cost, x)) == "(-1.0 * sigmoid(x))"
    monkeypatch.setattr(config, "optimizer_excluding", "stabilize")
    assert "(1.0 - sigmoid(x))" in tj.pp(tensor.grad(cost, x))  # differentiated as written


# ------------------------------------------------------------------------------------------------ In, dict outputs
def test_in_gives_defaults_and_names():
    x, y = tensor.dscalars("x", "y")
    f = tj.function([x, In(y, value=10.0)], x + y)
    assert f(1.0) == 11.0 and f(1.0, 2.0) == 3.0 and f(1.0, y=5.0) == 6.0
    g = tj.function([In(x, name="first"), y], x - y)
    assert g(first=5.0, y=1.0) == 4.0
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        g(x=5.0, y=1.0)
    with pytest.raises(TypeError, match="missing a value"):
        f()
    with pytest.raises(TypeError, match="symbolic variable"):
        In(3.0)
    with pytest.raises(NotImplementedError, match="shared variable"):
        In(x, mutable=True)


def test_dict_outputs_return_a_dict():
    x = tensor.dvector("x")
    s = tj.shared(0.0, name="s")
    f = tj.function([x], {"total": x.sum(), "double": 2 * x}, updates=[(s, s + 1)])
    out = f(np.arange(3.0))
    assert set(out) == {"total", "double"}
    assert out["total"] == 3.0 and list(out["double"]) == [0.0, 2.0, 4.0]
    assert s.get_value() == 1.0
    one = f(np.ones(1))  # a length-1 call takes the general path
    assert one["total"] == 1.0 and s.get_value() == 2.0


# ------------------------------------------------------------------------------------------------ Theano scripts
def test_python_m_tracejit_theano_runs_a_theano_script(tmp_path):
    script = tmp_path / "logistic.py"
    script.write_text(textwrap.dedent("""
        import sys
        import numpy
        import theano
        import theano.tensor as T
        from theano import function, pp
        from theano.tensor.nnet import sigmoid
        x = T.dmatrix('x')
        s = sigmoid(x)
        f = function([x], s, mode=theano.Mode(strict_ieee=True))
        print(theano.__name__, sys.argv[1], f(numpy.zeros((1, 2))).tolist(), pp(x + 1))
    """))
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "tracejit.theano", str(script), "hello"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tracejit.theano", "hello", "[[0.5,", "0.5]]", "(x", "+", "1.0)"]
    usage = subprocess.run([sys.executable, "-m", "tracejit.theano"], capture_output=True, text=True, env=env,
                           timeout=300)
    assert usage.returncode == 2 and "usage" in usage.stderr
