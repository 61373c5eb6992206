"""The Theano tutorial's first program: adding two scalars. Prints 4.0."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tracejit as theano  # noqa: E402
from tracejit import pp, tensor  # noqa: E402

x = tensor.dscalar()
y = tensor.dscalar()
z = x + y
f = theano.function([x, y], z)
print(f(1.5, 2.5))

a, b = tensor.dscalars('a', 'b')
print(pp((a + b) - a))
