"""Central differences, the reference the gradient tests compare with."""
import numpy as np


def numeric_grad(f, x, h=1e-6):
    """Central differences of scalar ``f`` at float64 ``x`` (error ~h^2 * f''')."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = float(f(x))
        flat[i] = old - h
        fm = float(f(x))
        flat[i] = old
        gf[i] = (fp - fm) / (2 * h)
    return g
