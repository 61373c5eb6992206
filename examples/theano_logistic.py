"""The Theano tutorial's logistic function, applied elementwise to a matrix."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tracejit as theano  # noqa: E402
from tracejit import tensor  # noqa: E402

x = tensor.dmatrix('x')
s = 1 / (1 + tensor.exp(-x))
logistic = theano.function([x], s)
print(logistic([[0, 1], [-1, -2]]))
