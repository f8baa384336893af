"""The test domain table: one entry per op of wengert's op table.

Each entry gives how to call the op through the public API, its value from
``math`` (an independent implementation), its partial derivatives in closed
form, and the domain to sample.  ``test_ops.py`` checks that every op in
``wengert.OP_NAMES`` has an entry, so a new op cannot go untested.
"""

import math
from dataclasses import dataclass
from collections.abc import Callable

import wengert as wg

TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@dataclass(frozen=True)
class OpCase:
    apply: Callable          # the op through the public API, on Vars (or numbers)
    value: Callable          # its value from the math module
    partials: Callable       # closed-form partial derivatives, a tuple (one per operand)
    domain: tuple            # (low, high) per operand, where the op is smooth
    constant_second: bool = False   # the second operand is a plain number (pow_const)


def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


CASES = {
    # -- two operands --
    "add": OpCase(lambda a, b: a + b, lambda a, b: a + b, lambda a, b: (1.0, 1.0),
                  ((-5, 5), (-5, 5))),
    "sub": OpCase(lambda a, b: a - b, lambda a, b: a - b, lambda a, b: (1.0, -1.0),
                  ((-5, 5), (-5, 5))),
    "mul": OpCase(lambda a, b: a * b, lambda a, b: a * b, lambda a, b: (b, a),
                  ((-5, 5), (-5, 5))),
    "div": OpCase(lambda a, b: a / b, lambda a, b: a / b, lambda a, b: (1 / b, -a / b ** 2),
                  ((-5, 5), (0.5, 5))),
    "pow": OpCase(lambda a, b: a ** b, math.pow,
                  lambda a, b: (b * math.pow(a, b - 1), math.log(a) * math.pow(a, b)),
                  ((0.2, 4), (-3, 3))),
    "pow_const": OpCase(lambda a, b: a ** b, math.pow,
                        lambda a, b: (b * math.pow(a, b - 1),),
                        ((0.2, 4), (-3, 3)), constant_second=True),
    "atan2": OpCase(wg.atan2, math.atan2,
                    lambda a, b: (b / (a * a + b * b), -a / (a * a + b * b)),
                    ((-3, 3), (0.3, 3))),
    "hypot": OpCase(wg.hypot, math.hypot,
                    lambda a, b: (a / math.hypot(a, b), b / math.hypot(a, b)),
                    ((0.3, 3), (-3, -0.3))),
    "maximum": OpCase(wg.maximum, max, lambda a, b: (1.0, 0.0) if a > b else (0.0, 1.0),
                      ((-3, 3), (-3, 3))),
    "minimum": OpCase(wg.minimum, min, lambda a, b: (1.0, 0.0) if a < b else (0.0, 1.0),
                      ((-3, 3), (-3, 3))),
    # -- one operand --
    "neg": OpCase(lambda a: -a, lambda a: -a, lambda a: (-1.0,), ((-5, 5),)),
    "abs": OpCase(abs, abs, lambda a: (math.copysign(1.0, a),), ((-5, 5),)),
    "exp": OpCase(wg.exp, math.exp, lambda a: (math.exp(a),), ((-5, 5),)),
    "expm1": OpCase(wg.expm1, math.expm1, lambda a: (math.exp(a),), ((-5, 5),)),
    "exp2": OpCase(wg.exp2, lambda a: 2.0 ** a, lambda a: (2.0 ** a * math.log(2),), ((-5, 5),)),
    "log": OpCase(wg.log, math.log, lambda a: (1 / a,), ((0.1, 10),)),
    "log1p": OpCase(wg.log1p, math.log1p, lambda a: (1 / (1 + a),), ((-0.9, 10),)),
    "log2": OpCase(wg.log2, math.log2, lambda a: (1 / (a * math.log(2)),), ((0.1, 10),)),
    "log10": OpCase(wg.log10, math.log10, lambda a: (1 / (a * math.log(10)),), ((0.1, 10),)),
    "sqrt": OpCase(wg.sqrt, math.sqrt, lambda a: (0.5 / math.sqrt(a),), ((0.1, 10),)),
    "cbrt": OpCase(wg.cbrt, lambda a: math.copysign(abs(a) ** (1 / 3), a),
                   lambda a: (1 / (3 * abs(a) ** (2 / 3)),), ((0.1, 10),)),
    "sin": OpCase(wg.sin, math.sin, lambda a: (math.cos(a),), ((-5, 5),)),
    "cos": OpCase(wg.cos, math.cos, lambda a: (-math.sin(a),), ((-5, 5),)),
    "tan": OpCase(wg.tan, math.tan, lambda a: (1 / math.cos(a) ** 2,), ((-1.4, 1.4),)),
    "asin": OpCase(wg.asin, math.asin, lambda a: (1 / math.sqrt(1 - a * a),), ((-0.95, 0.95),)),
    "acos": OpCase(wg.acos, math.acos, lambda a: (-1 / math.sqrt(1 - a * a),), ((-0.95, 0.95),)),
    "atan": OpCase(wg.atan, math.atan, lambda a: (1 / (1 + a * a),), ((-5, 5),)),
    "sinh": OpCase(wg.sinh, math.sinh, lambda a: (math.cosh(a),), ((-4, 4),)),
    "cosh": OpCase(wg.cosh, math.cosh, lambda a: (math.sinh(a),), ((-4, 4),)),
    "tanh": OpCase(wg.tanh, math.tanh, lambda a: (1 / math.cosh(a) ** 2,), ((-4, 4),)),
    "asinh": OpCase(wg.asinh, math.asinh, lambda a: (1 / math.sqrt(a * a + 1),), ((-5, 5),)),
    "acosh": OpCase(wg.acosh, math.acosh, lambda a: (1 / math.sqrt(a * a - 1),), ((1.1, 6),)),
    "atanh": OpCase(wg.atanh, math.atanh, lambda a: (1 / (1 - a * a),), ((-0.95, 0.95),)),
    "erf": OpCase(wg.erf, math.erf, lambda a: (TWO_OVER_SQRT_PI * math.exp(-a * a),), ((-3, 3),)),
    "erfc": OpCase(wg.erfc, math.erfc, lambda a: (-TWO_OVER_SQRT_PI * math.exp(-a * a),),
                   ((-3, 3),)),
    "sigmoid": OpCase(wg.sigmoid, _sigmoid, lambda a: (_sigmoid(a) * (1 - _sigmoid(a)),),
                      ((-8, 8),)),
    "relu": OpCase(wg.relu, lambda a: max(a, 0.0), lambda a: (1.0 if a > 0 else 0.0,),
                   ((-5, 5),)),
    "softplus": OpCase(wg.softplus, lambda a: math.log1p(math.exp(a)), lambda a: (_sigmoid(a),),
                       ((-8, 8),)),
}

#: Ops with no operands: recorded by wg.var / constants, never evaluated.
LEAVES = {"const", "input"}

#: Ops whose derivative jumps (finite differences are checked away from the kink).
KINKS = {"abs": lambda a: (a,), "relu": lambda a: (a,),
         "maximum": lambda a, b: (a - b,), "minimum": lambda a, b: (a - b,)}
