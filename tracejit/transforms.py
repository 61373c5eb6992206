"""grad, value_and_grad, vjp (owned by the autodiff work; see passes/autodiff.py)."""


def grad(fun, argnums=0, has_aux=False):
    raise NotImplementedError("tj.grad is not implemented yet")


def value_and_grad(fun, argnums=0, has_aux=False):
    raise NotImplementedError("tj.value_and_grad is not implemented yet")


def vjp(fun, *primals):
    raise NotImplementedError("tj.vjp is not implemented yet")
