"""The numpy surface report (tracejit.surface): read off the dispatch tables, printed in the README, and checked
against calls (what it reports supported runs; what it reports missing is refused with a clear error)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tracejit as tj
from tracejit import surface

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_readme_block_is_the_generated_report():
    with open(README) as f:
        text = f.read()
    block = text[text.index(surface.BEGIN):text.index(surface.END) + len(surface.END)]
    if f"with numpy {np.__version__}:" in block:
        assert block == surface.markdown(), "README's block is stale: python -m tracejit.surface --write README.md"
    else:  # another numpy (its public names differ): every function the README lists must still be supported
        listed = {n.strip() for ln in block.split("- **Not on")[0].splitlines()[3:] if ln.startswith("  ")
                  for n in ln.split(",") if n.strip()}
        supported = {n for yes, _ in surface.report().values() for n in yes}
        assert len(listed) > 250 and sorted(listed - supported) == []


def test_every_audited_function_is_reported_supported():
    from test_numpy_surface import CASES
    rep = surface.report()
    supported = {n for yes, _ in rep.values() for n in yes}
    public = {n for m in surface.MODULES for n in surface.public_functions(__import__(m, fromlist=["_"]))}
    audited = {n for n in CASES if n in public}
    assert len(audited) > 50
    assert sorted(audited - supported) == []


@pytest.mark.parametrize("name", ["digitize", "intersect1d", "histogram2d", "choose"])
def test_reported_missing_functions_are_refused_clearly(name):
    assert name in surface.report()["numpy"][1]
    with pytest.raises(NotImplementedError, match=name):
        tj.jit(lambda x: getattr(np, name)(x, x))(np.arange(4.0))


def test_unary_ufuncs_reported_supported_run():
    yes = surface.report()["numpy"][0]
    x = np.linspace(0.1, 0.9, 5)
    for name in yes:
        f = getattr(np, name)
        if isinstance(f, np.ufunc) and f.nin == 1 and f.nout == 1 and any(t.startswith("d->d") for t in f.types):
            got, want = tj.jit(f)(x), f(x)
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=name)
