"""The Theano tutorial's gradient of the logistic function: d/dx sum(s(x)) = s(x) * (1 - s(x))."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tracejit as theano  # noqa: E402
from tracejit import pp, tensor  # noqa: E402

x = tensor.dmatrix('x')
s = tensor.sum(1 / (1 + tensor.exp(-x)))
gs = tensor.grad(s, x)
dlogistic = theano.function([x], gs)
print(dlogistic([[0, 1], [-1, -2]]))
print(pp(gs))
