"""wengert: exact gradients of scalar Python code, fast.

A flat Wengert-list tape written from compiled Cython, a reverse sweep in C
without the GIL, and a thin Python front end.

>>> import wengert as wg
>>> with wg.Tape() as tape:
...     x, y, z = wg.variables([1.0, 3.0, -3.0])
...     g = (x + y) * z
...     g.backward()
>>> g.value, (x.grad, y.grad, z.grad)
(-12.0, (-3.0, -3.0, 4.0))
"""

from wengert._tape import (
    OP_ARITY,
    OP_NAMES,
    Tape,
    Var,
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    cbrt,
    cos,
    cosh,
    current_tape,
    erf,
    erfc,
    exp,
    exp2,
    expm1,
    hypot,
    log,
    log1p,
    log2,
    log10,
    maximum,
    minimum,
    pow,
    relu,
    sigmoid,
    sin,
    sinh,
    softplus,
    sqrt,
    tan,
    tanh,
    var,
    variables,
)
from wengert.functional import grad, hessian, hvp, jacobian, jvp, value_and_grad
from wengert.recorded import BranchChanged, RecordedFunction, load, record
from wengert.optimize import minimize
from wengert.graph import draw, to_dot
from wengert import nn, optim  # noqa: E402  (submodules: wg.nn.MLP, wg.optim.Adam)

__version__ = "0.1.0"

__all__ = [
    "OP_ARITY", "OP_NAMES", "Tape", "Var", "current_tape", "var", "variables",
    "grad", "value_and_grad", "jacobian", "jvp", "hvp", "hessian",
    "record", "load", "RecordedFunction", "BranchChanged",
    "minimize", "to_dot", "draw", "nn", "optim",
    "exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "cbrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
    "erf", "erfc", "hypot", "pow", "sigmoid", "relu", "softplus", "maximum", "minimum",
]
