"""The loop programs of Theano's tutorial ("Loop": scan), written as a Theano user writes them.

    python examples/theano_loops.py                 # with tracejit imported as theano
    python -m tracejit.theano examples/theano_loops.py

Each program prints what Theano's documentation prints for it (and asserts the values).
"""
import numpy as np

try:
    import theano
    import theano.tensor as T
except ImportError:  # run directly: tracejit is the Theano here
    import tracejit as theano
    import tracejit.tensor as T

floatX = "float64"


def show(title, value, expect):
    np.testing.assert_allclose(value, expect, rtol=1e-7, atol=1e-12)
    print(f"{title}:\n{np.asarray(value)}\n")


# A ** k by repeated multiplication: the loop keeps A ** i in its carry
k = T.iscalar("k")
A = T.vector("A")
result, updates = theano.scan(fn=lambda prior_result, A: prior_result * A, outputs_info=T.ones_like(A),
                              non_sequences=A, n_steps=k)
final_result = result[-1]  # only the last step is needed
power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
show("power(range(10), 2)", power(range(10), 2), np.arange(10.0) ** 2)
show("power(range(10), 4)", power(range(10), 4), np.arange(10.0) ** 4)

# a polynomial from its coefficients: scan over the coefficients and their powers, then sum
coefficients = T.vector("coefficients")
x = T.scalar("x")
max_coefficients_supported = 10000
components, updates = theano.scan(fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
                                  outputs_info=None,
                                  sequences=[coefficients, T.arange(max_coefficients_supported)],
                                  non_sequences=x)
polynomial = components.sum()
calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
test_coefficients = np.asarray([1, 0, 2], dtype=np.float32)
show("calculate_polynomial([1, 0, 2], 3)", calculate_polynomial(test_coefficients, 3), 19.0)

# tanh(x(t).dot(W) + b) elementwise over the rows of X
X = T.matrix("X")
W = T.matrix("W")
b_sym = T.vector("b_sym")
results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
x = np.eye(2, dtype=floatX)
w = np.ones((2, 2), dtype=floatX)
b = np.ones((2), dtype=floatX)
b[1] = 2
show("compute_elementwise(eye(2), ones((2, 2)), [1, 2])", compute_elementwise(x, w, b), np.tanh(x.dot(w) + b))

# x(t) = tanh(x(t - 1).dot(W) + y(t).dot(U) + p(T - t).dot(V))
X = T.vector("X")
W, U, V = T.matrix("W"), T.matrix("U"), T.matrix("V")
Y = T.matrix("Y")
P = T.matrix("P")
results, updates = theano.scan(lambda y, p, x_tm1: T.tanh(T.dot(x_tm1, W) + T.dot(y, U) + T.dot(p, V)),
                               sequences=[Y, P[::-1]], outputs_info=[X])
compute_seq = theano.function(inputs=[X, W, Y, U, P, V], outputs=results)
x = np.zeros((2), dtype=floatX)
x[1] = 1
w = np.ones((2, 2), dtype=floatX)
y = np.ones((5, 2), dtype=floatX)
y[0, :] = -3
u = np.ones((2, 2), dtype=floatX)
p = np.ones((5, 2), dtype=floatX)
p[0, :] = 3
v = np.ones((2, 2), dtype=floatX)
x_res = np.zeros((5, 2), dtype=floatX)
x_res[0] = np.tanh(x.dot(w) + y[0].dot(u) + p[4].dot(v))
for i in range(1, 5):
    x_res[i] = np.tanh(x_res[i - 1].dot(w) + y[i].dot(u) + p[4 - i].dot(v))
show("compute_seq(...) (x(t) = tanh(x(t-1) W + y(t) U + p(T-t) V))", compute_seq(x, w, y, u, p, v), x_res)

# norms of the rows and of the columns of X
X = T.matrix("X")
results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X])
compute_norm_lines = theano.function(inputs=[X], outputs=results)
results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X.T])
compute_norm_cols = theano.function(inputs=[X], outputs=results)
x = np.diag(np.arange(1, 6, dtype=floatX), 1)
show("compute_norm_lines(diag(1..5, 1))", compute_norm_lines(x), [1, 2, 3, 4, 5, 0])
show("compute_norm_cols(diag(1..5, 1))", compute_norm_cols(x), [0, 1, 2, 3, 4, 5])

# the trace of X, accumulated along the diagonal
X = T.matrix("X")
results, updates = theano.scan(lambda i, j, t_f: T.cast(X[i, j] + t_f, floatX),
                               sequences=[T.arange(X.shape[0]), T.arange(X.shape[1])],
                               outputs_info=np.asarray(0.0, dtype=floatX))
result = results[-1]
compute_trace = theano.function(inputs=[X], outputs=result)
x = np.eye(5, dtype=floatX)
x[0] = np.arange(5, dtype=floatX)
show("compute_trace(...)", compute_trace(x), 4.0)

# x(t) = x(t - 2).dot(U) + x(t - 1).dot(V) + tanh(x(t - 1).dot(W) + b): two taps of the output
X = T.matrix("X")
W, V, U = T.matrix("W"), T.matrix("V"), T.matrix("U")
b_sym = T.vector("b_sym")
n_sym = T.iscalar("n_sym")
results, updates = theano.scan(lambda x_tm2, x_tm1: T.dot(x_tm2, U) + T.dot(x_tm1, V) + T.tanh(T.dot(x_tm1, W)
                                                                                              + b_sym),
                               n_steps=n_sym, outputs_info=[dict(initial=X, taps=[-2, -1])])
compute_seq2 = theano.function(inputs=[X, U, V, W, b_sym, n_sym], outputs=results)
x = np.zeros((2, 2), dtype=floatX)
x[1, 1] = 1
w = 0.5 * np.ones((2, 2), dtype=floatX)
u = 0.5 * (np.ones((2, 2), dtype=floatX) - np.eye(2, dtype=floatX))
v = 0.5 * np.ones((2, 2), dtype=floatX)
n = 10
b = np.ones((2), dtype=floatX)
x_res = np.zeros((10, 2))
x_res[0] = x[0].dot(u) + x[1].dot(v) + np.tanh(x[1].dot(w) + b)
x_res[1] = x[1].dot(u) + x_res[0].dot(v) + np.tanh(x_res[0].dot(w) + b)
x_res[2] = x_res[0].dot(u) + x_res[1].dot(v) + np.tanh(x_res[1].dot(w) + b)
for i in range(2, 10):
    x_res[i] = (x_res[i - 2].dot(u) + x_res[i - 1].dot(v) + np.tanh(x_res[i - 1].dot(w) + b))
show("compute_seq2(..., n_sym=10)", compute_seq2(x, u, v, w, b, n), x_res)

# the Jacobian of y = x ** 2, one gradient per step of a scan
x = T.dvector("x")
y = x ** 2
J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]), non_sequences=[y, x])
f = theano.function([x], J, updates=updates)
show("jacobian of x ** 2 at [4, 4]", f([4, 4]), [[8, 0], [0, 8]])

# the Hessian of sum(x ** 2): the Jacobian of its gradient
x = T.dvector("x")
y = x ** 2
cost = y.sum()
gy = T.grad(cost, x)
H, updates = theano.scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]), non_sequences=[gy, x])
f = theano.function([x], H, updates=updates)
show("hessian of sum(x ** 2) at [4, 4]", f([4, 4]), [[2, 0], [0, 2]])

# a shared variable updated inside the loop: the accumulator
k = theano.shared(0)
n_sym = T.iscalar("n_sym")
results, updates = theano.scan(lambda: {k: (k + 1)}, n_steps=n_sym)
accumulator = theano.function([n_sym], [], updates=updates)
print("k before:", k.get_value())
accumulator(5)
print("k after accumulator(5):", k.get_value())
assert k.get_value() == 5
