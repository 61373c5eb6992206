"""The Theano tutorial's function with several outputs: the difference, its absolute value and its square."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tracejit as theano  # noqa: E402
from tracejit import tensor  # noqa: E402

x, y = tensor.dmatrices('x', 'y')
diff = x - y
abs_diff = abs(diff)
diff_squared = diff**2
f = theano.function([x, y], [diff, abs_diff, diff_squared])
result = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
for r in result:
    print(r)
