"""The layers import only downwards: ir < passes < lower < backends, with trace/ and the public API on top.

Checked statically from each module's source (every import statement, including those inside functions, and
``importlib.import_module`` of a literal name), so the test is fast and an import that happens to run late, or
never in the test process, cannot hide an upward edge.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tracejit"

# everything in tracejit/ that is not a subpackage sits above the compiler's layers, except the exception types
TOP_MODULES = {f"tracejit.{p.stem}" for p in ROOT.glob("*.py") if p.stem not in ("__init__", "__main__", "errors")}
ABOVE_LOWER = {"tracejit.codegen", "tracejit.backends", "tracejit.trace", "tracejit.theano"} | TOP_MODULES
FORBIDDEN = {
    "ir": ABOVE_LOWER | {"tracejit.passes", "tracejit.lower"},
    "passes": ABOVE_LOWER | {"tracejit.lower"},
    "lower": ABOVE_LOWER,
    # a backend lowers a Plan: it may read ir, lower and errors, never the tracing or public API above it
    "backends": ABOVE_LOWER - {"tracejit.backends"},
}
# upward edges known and not yet removed: (importing module, imported module) -> why it is still there
KNOWN = {
    # the lgamma/tgamma derivative needs digamma, written in scipy_special.py with custom_jvp over tracers; moving
    # it down means writing digamma and its polygamma derivative chain over IR primitives (a lazy import today)
    ("tracejit.passes.autodiff", "tracejit.scipy_special"): "digamma for lgamma's derivative",
}


def _module_name(path: pathlib.Path, root=ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: pathlib.Path, root=ROOT) -> set:
    """Absolute names of the modules ``path`` imports (``from a import b`` names both a and a.b: b may be one)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names if a.name != "*"}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            out.add(str(node.args[0].value))
    return out


def _violations(layer: str) -> list:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        src = _module_name(path)
        for mod in sorted(imported_modules(path)):
            hit = [f for f in FORBIDDEN[layer] if mod == f or mod.startswith(f + ".")]
            if hit and not any((src, h) in KNOWN for h in hit):
                bad.append(f"{src} imports {mod}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer):
    assert (ROOT / layer).is_dir()
    assert _violations(layer) == []


def test_the_checker_sees_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "tracejit" / "ir"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text("def f():\n    from ..codegen import llvm\n    from .. import trace\n"
                                "    import importlib; importlib.import_module('tracejit.passes.cse')\n")
    found = imported_modules(pkg / "bad.py", root=tmp_path / "tracejit")
    assert {"tracejit.codegen.llvm", "tracejit.trace", "tracejit.passes.cse"} <= found


def test_known_exceptions_are_still_real():
    """An edge listed in KNOWN that is gone should leave the list too."""
    for src, mod in KNOWN:
        path = ROOT.joinpath(*src.split(".")[1:]).with_suffix(".py")
        assert mod in imported_modules(path), (src, mod)
