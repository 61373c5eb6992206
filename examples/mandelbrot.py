"""Mandelbrot escape times: a per-pixel ``while_loop`` (iterate until |z| > 2 or the iteration cap), batched over
the image with ``vmap``. The batched loop runs while any pixel is still iterating; finished pixels keep their
count. ``python examples/mandelbrot.py`` prints a small ASCII picture and checks it against numpy.
"""
import numpy as np

import tracejit as tj


def escape_time(cr, ci, max_iter=100):
    """Iterations before z -> z^2 + c leaves the radius-2 disc (``max_iter`` if it never does)."""
    def going(s):
        zr, zi, k = s
        return (zr * zr + zi * zi <= 4.0) & (k < max_iter)

    def step(s):
        zr, zi, k = s
        return zr * zr - zi * zi + cr, 2.0 * zr * zi + ci, k + 1
    return tj.while_loop(going, step, (np.float64(0.0), np.float64(0.0), np.int64(0)))[2]


@tj.jit
def mandelbrot(cr, ci):
    """Escape times of the points ``cr + i ci`` (any shape)."""
    flat = tj.vmap(escape_time)(cr.ravel(), ci.ravel())
    return flat.reshape(cr.shape)


def mandelbrot_numpy(cr, ci, max_iter=100):
    zr, zi = np.zeros_like(cr), np.zeros_like(ci)
    count = np.zeros(cr.shape, np.int64)
    for _ in range(max_iter):
        alive = zr * zr + zi * zi <= 4.0
        if not alive.any():
            break
        zr, zi = np.where(alive, zr * zr - zi * zi + cr, zr), np.where(alive, 2 * zr * zi + ci, zi)
        count += alive
    return count


def mandelbrot_complex(c, iters):
    """The plain-numpy form on complex128 (issue 14's program): masked updates of z, run unchanged under jit."""
    z = np.zeros_like(c)
    n = np.zeros(c.shape, np.int64)
    for _ in range(iters):
        m = np.abs(z) <= 2.0
        z[m] = z[m] * z[m] + c[m]
        n[m] += 1
    return n


def grid(width, height):
    x = np.linspace(-2.2, 0.8, width)
    y = np.linspace(-1.2, 1.2, height)
    return np.meshgrid(x, y)


if __name__ == "__main__":
    cr, ci = grid(78, 32)
    counts = mandelbrot(cr, ci)
    assert (counts == mandelbrot_numpy(cr, ci)).all()
    chars = " .:-=+*#%@"
    for row in counts:
        print("".join(chars[min(int(c) * len(chars) // 101, len(chars) - 1)] for c in row))
