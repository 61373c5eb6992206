"""Real-style numpy programs, written the plain numpy way, that run unchanged under ``@tj.jit`` (issue 13).

Each is checked against numpy by tests/test_numpy_programs.py and timed by benchmarks/numpy_programs.py.
``PROGRAMS`` maps a name to (function, make_arguments(n, rng)).
"""
import numpy as np


def heat_step(u, alpha):
    """One explicit heat-equation step that updates ``u`` in place and returns None."""
    u[1:-1, 1:-1] += alpha * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * u[1:-1, 1:-1])


def life_step(board):
    """Conway's Game of Life: neighbour counts from shifted slices, the rules written with masks."""
    n = np.zeros(board.shape, dtype=np.int64)
    n[1:, :] += board[:-1, :]
    n[:-1, :] += board[1:, :]
    n[:, 1:] += board[:, :-1]
    n[:, :-1] += board[:, 1:]
    n[1:, 1:] += board[:-1, :-1]
    n[1:, :-1] += board[:-1, 1:]
    n[:-1, 1:] += board[1:, :-1]
    n[:-1, :-1] += board[1:, 1:]
    new = np.zeros_like(board)
    new[(board == 1) & ((n == 2) | (n == 3))] = 1
    new[(board == 0) & (n == 3)] = 1
    return new


def periodic_distances(x, L):
    """All pairwise distances of points ``x`` (n, 3) in a periodic box of side ``L`` (minimum image)."""
    d = x[:, None, :] - x[None, :, :]
    d[d > L / 2] -= L
    d[d < -L / 2] += L
    return np.sqrt((d ** 2).sum(axis=-1))


def box_blur(img, r):
    """A (2r+1)^2 box filter over the valid region, slicing by lengths computed from the image's shape."""
    h, w = img.shape
    k = 2 * r + 1
    oh, ow = h - 2 * r, w - 2 * r
    out = np.zeros((oh, ow))
    for dy in range(k):
        for dx in range(k):
            out += img[dy:dy + oh, dx:dx + ow]
    return out / (k * k)


PROGRAMS = {
    "heat_step (mutates u)": (heat_step, lambda n, rng: (rng.random((n, n)), 0.1)),
    "life_step": (life_step, lambda n, rng: ((rng.random((n, n)) < 0.3).astype(np.int64),)),
    "periodic_distances": (periodic_distances, lambda n, rng: (rng.random((n, 3)) * 10.0, 10.0)),
    "box_blur": (box_blur, lambda n, rng: (rng.random((n, n + 3)), 2)),
}
