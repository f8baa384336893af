"""The reference engine: wengert's algorithm in plain, readable Python.

The same flat Wengert list (tape) as the compiled engine, sharing no code with
it: every elementary operation appends one row (op name, operand rows, local
partial derivatives, value), and one backward loop over the rows turns them
into gradients.  A forward loop turns them into directional derivatives
(``jvp``), and the backward loop differentiated along a direction, with the
second partials from the same op table, into Hessian-vector products
(``hvp``, ``hessian``).  It serves as an independent oracle for the tests, as
the pure-Python baseline in the benchmarks, and as a text to learn from.

>>> from wengert import reference as rf
>>> with rf.Tape():
...     x, y, z = rf.variables([1.0, 3.0, -3.0])
...     g = (x + y) * z
...     g.backward()
>>> g.value, (x.grad, y.grad, z.grad)
(-12.0, (-3.0, -3.0, 4.0))
"""

import contextvars
import math
import struct
from collections.abc import Callable
from typing import NamedTuple

inf, nan = math.inf, math.nan
LN2, LN10, TWO_OVER_SQRT_PI = math.log(2.0), math.log(10.0), 2.0 / math.sqrt(math.pi)

# ---------------------------------------------------------------------------
# C's libm in Python: IEEE-754 results where Python's math module raises
# (ValueError for a domain or pole error, OverflowError for a range error).
# ---------------------------------------------------------------------------


def _div(a, b):
    """a / b; at b == 0 a signed inf (sign of a times sign of b), or nan for 0/0."""
    if b == 0.0:
        return nan if a == 0.0 or a != a else math.copysign(inf, a) * math.copysign(1.0, b)
    return a / b


def _libm(f, pole=None, odd=False):
    """Wrap ``math.f`` to return C's IEEE result where Python raises.

    Python raises OverflowError where C returns inf (-inf for an odd f at
    a < 0), and ValueError where C returns -inf (at a log-like pole) or nan.
    """
    def wrapped(a):
        try:
            return f(a)
        except OverflowError:
            return math.copysign(inf, a) if odd else inf
        except ValueError:
            return -inf if a == pole else nan
    return wrapped


def _pow(a, b):
    """C pow: pow(0, 0) = 1, pow(0, -1) = inf, pow(-8, 1/3) = nan, pow(-2, 3) = -8."""
    odd = b % 2.0 == 1.0                       # an odd integer (inf % 2 and nan % 2 are nan)
    try:
        return math.pow(a, b)
    except OverflowError:                      # negative only for an odd power of a < 0
        return -inf if a < 0.0 and odd else inf
    except ValueError:                         # a pole at a = +-0, or a fractional power of a < 0
        return (math.copysign(inf, a) if odd else inf) if a == 0.0 else nan


_exp, _expm1, _cosh = _libm(math.exp), _libm(math.expm1), _libm(math.cosh)
_exp2 = _libm(getattr(math, "exp2", lambda a: math.pow(2.0, a)))    # math.exp2: Python 3.11+
_sinh = _libm(math.sinh, odd=True)
_log, _log2, _log10 = _libm(math.log, 0.0), _libm(math.log2, 0.0), _libm(math.log10, 0.0)
_log1p = _libm(math.log1p, pole=-1.0)
_sqrt, _sin, _cos, _tan = _libm(math.sqrt), _libm(math.sin), _libm(math.cos), _libm(math.tan)
_asin, _acos, _acosh = _libm(math.asin), _libm(math.acos), _libm(math.acosh)
_cbrt = getattr(math, "cbrt", lambda a: math.copysign(abs(a) ** (1.0 / 3.0), a))  # 3.11+


def _atanh(a):
    """atanh with C's results: +-inf at the poles +-1, nan beyond them."""
    return math.copysign(inf, a) if abs(a) == 1.0 else _libm(math.atanh)(a)


def _sigmoid(a):
    """1 / (1 + exp(-a)), arranged so that exp never overflows."""
    if a >= 0.0:
        return 1.0 / (1.0 + _exp(-a))
    return _exp(a) / (1.0 + _exp(a))           # also where a is nan


def _softplus(a):
    """log(1 + exp(a)) without overflow: a + log(1 + exp(-a)) for a >= 0."""
    return a + math.log1p(_exp(-a)) if a >= 0.0 else math.log1p(_exp(a))


def _relu(a):
    return a if a > 0.0 else 0.0 if a <= 0.0 else nan


def _step(a):
    """The slope of relu: 0 or 1, with relu'(0) = 0; nan stays nan."""
    return 1.0 if a > 0.0 else 0.0 if a <= 0.0 else nan


def _sign(a):
    """The slope of abs: -1, 0 or 1, with abs'(0) = 0; nan stays nan."""
    return 1.0 if a > 0.0 else -1.0 if a < 0.0 else 0.0 if a == 0.0 else nan


def _times(factor, other):
    """factor * other, except that an exact zero factor gives 0.0 even against inf or nan.

    The rule of every sweep: a product with an exact zero factor (an adjoint,
    a partial or a tangent) contributes nothing.
    """
    return factor * other if factor != 0.0 and other != 0.0 else 0.0


def _pow_rule(a, b):
    y = a * a if b == 2.0 else _pow(a, b)      # the common square, exactly
    d_base = 0.0 if b == 0.0 else b * _pow(a, b - 1.0)     # convention: a ** 0 is constant at a = 0
    d_exponent = 0.0 if a == 0.0 else _log(a) * y          # convention: no -inf * 0 at a = 0
    return y, d_base, d_exponent


def _atan2_rule(a, b):
    r = math.hypot(a, b)                       # b / r / r, not b / (a*a + b*b): no underflow
    if r == 0.0:
        return math.atan2(a, b), 0.0, 0.0      # convention: zero partials at the origin
    return math.atan2(a, b), b / r / r, -a / r / r


def _hypot_rule(a, b):
    r = math.hypot(a, b)
    if r == 0.0:
        return r, 0.0, 0.0                     # convention: zero partials at the origin
    return r, a / r, b / r


def _select(a, b, a_wins):
    """maximum and minimum: a tie splits the gradient evenly; nan propagates."""
    if a == b:
        return a, 0.5, 0.5
    if a != a or b != b:
        return nan, nan, nan
    return (a, 1.0, 0.0) if a_wins else (b, 0.0, 1.0)


def _pow_second_partials(a, b, y, da, db):
    """d2/da2 = b (b-1) a**(b-2), d2/dadb = a**(b-1) (1 + b log a), d2/db2 = log(a)**2 y."""
    if b == 2.0:
        daa = 2.0                              # the square, exactly
    elif b == 0.0 or b == 1.0:
        daa = 0.0                              # convention: a ** b is constant or linear in a
    else:
        daa = b * (b - 1.0) * _pow(a, b - 2.0)
    if a == 0.0:
        return daa, 0.0, 0.0                   # convention: like d/db, no log(0) at a = 0
    return daa, _pow(a, b - 1.0) * (1.0 + b * _log(a)), _log(a) * _log(a) * y


def _atan2_second_partials(a, b, y, da, db):
    """d/da and d/db of (da, db) = (b, -a) / r**2: (-2ab, a*a - b*b, 2ab) / r**4.

    Written with the unit vector (u, v) = (a, b) / r, which cannot over- or
    underflow, and divided by r twice: r**4 and a*b would leave the range.
    """
    r = math.hypot(a, b)
    if r == 0.0:
        return 0.0, 0.0, 0.0                   # convention: zero at the origin
    u, v = a / r, b / r
    return -2.0 * u * v / r / r, (u - v) * (u + v) / r / r, 2.0 * u * v / r / r


def _hypot_second_partials(a, b, y, da, db):
    """With da = a/r and db = b/r: d2/da2 = b*b/r**3 = db*db/r, and so on."""
    if y == 0.0:
        return 0.0, 0.0, 0.0                   # convention: zero at the origin
    return db * db / y, -da * db / y, da * da / y


def _linear(a, b, y, da, db):
    """Linear on each piece: zero second partials everywhere, kinks included (convention)."""
    return 0.0, 0.0, 0.0


def _only_cross_term(a, b, y, da, db):
    """mul: d2(a*b)/da db = 1, and a*b is linear in a and in b."""
    return 0.0, 1.0, 0.0


class Rule(NamedTuple):
    """One op's derivatives: first order at recording, second order when asked."""
    partials: Callable          # (a, b) -> (value, d value/da, d value/db)
    second_partials: Callable   # (a, b, value, d/da, d/db) -> (d2/da2, d2/dadb, d2/db2)


# ---------------------------------------------------------------------------
# THE op table: op name -> Rule(partials, second_partials).  Unary ops ignore
# b and return 0.0 for every partial that involves b.  Second partials take
# the value y and the first partials too, because they are often cheapest
# written with them: exp'' = y, log'' = -(1/a)**2 = -da*da, tanh'' = -2*y*da.
# ---------------------------------------------------------------------------

RULES = {
    "add":      Rule(lambda a, b: (a + b, 1.0, 1.0), _linear),
    "sub":      Rule(lambda a, b: (a - b, 1.0, -1.0), _linear),
    "mul":      Rule(lambda a, b: (a * b, b, a), _only_cross_term),
    "div":      Rule(lambda a, b: (_div(a, b), _div(1.0, b), _div(_div(-a, b), b)),
                     lambda a, b, y, da, db: (0.0, _div(-1.0, b * b), _div(2.0 * y, b * b))),
    "pow":      Rule(_pow_rule, _pow_second_partials),
    "atan2":    Rule(_atan2_rule, _atan2_second_partials),
    "hypot":    Rule(_hypot_rule, _hypot_second_partials),
    "maximum":  Rule(lambda a, b: _select(a, b, a > b), _linear),
    "minimum":  Rule(lambda a, b: _select(a, b, a < b), _linear),
    "neg":      Rule(lambda a, b: (-a, -1.0, 0.0), _linear),
    "abs":      Rule(lambda a, b: (abs(a), _sign(a), 0.0), _linear),
    "exp":      Rule(lambda a, b: (_exp(a), _exp(a), 0.0),
                     lambda a, b, y, da, db: (y, 0.0, 0.0)),
    "expm1":    Rule(lambda a, b: (_expm1(a), _exp(a), 0.0),
                     lambda a, b, y, da, db: (da, 0.0, 0.0)),
    "exp2":     Rule(lambda a, b: (_exp2(a), _exp2(a) * LN2, 0.0),
                     lambda a, b, y, da, db: (da * LN2, 0.0, 0.0)),
    "log":      Rule(lambda a, b: (_log(a), _div(1.0, a), 0.0),
                     lambda a, b, y, da, db: (-da * da, 0.0, 0.0)),
    "log1p":    Rule(lambda a, b: (_log1p(a), _div(1.0, 1.0 + a), 0.0),
                     lambda a, b, y, da, db: (-da * da, 0.0, 0.0)),
    "log2":     Rule(lambda a, b: (_log2(a), _div(1.0, a * LN2), 0.0),
                     lambda a, b, y, da, db: (_div(-da, a), 0.0, 0.0)),
    "log10":    Rule(lambda a, b: (_log10(a), _div(1.0, a * LN10), 0.0),
                     lambda a, b, y, da, db: (_div(-da, a), 0.0, 0.0)),
    "sqrt":     Rule(lambda a, b: (_sqrt(a), _div(0.5, _sqrt(a)), 0.0),
                     lambda a, b, y, da, db: (_div(-0.5 * da, a), 0.0, 0.0)),
    "cbrt":     Rule(lambda a, b: (_cbrt(a), _div(1.0, 3.0 * _cbrt(a) ** 2), 0.0),
                     lambda a, b, y, da, db: (_div(-2.0 * da, 3.0 * a), 0.0, 0.0)),
    "sin":      Rule(lambda a, b: (_sin(a), _cos(a), 0.0),
                     lambda a, b, y, da, db: (-y, 0.0, 0.0)),
    "cos":      Rule(lambda a, b: (_cos(a), -_sin(a), 0.0),
                     lambda a, b, y, da, db: (-y, 0.0, 0.0)),
    "tan":      Rule(lambda a, b: (_tan(a), 1.0 + _tan(a) ** 2, 0.0),
                     lambda a, b, y, da, db: (2.0 * y * da, 0.0, 0.0)),
    "asin":     Rule(lambda a, b: (_asin(a), _div(1.0, _sqrt(1.0 - a * a)), 0.0),
                     lambda a, b, y, da, db: (a * da * da * da, 0.0, 0.0)),
    "acos":     Rule(lambda a, b: (_acos(a), _div(-1.0, _sqrt(1.0 - a * a)), 0.0),
                     lambda a, b, y, da, db: (a * da * da * da, 0.0, 0.0)),
    "atan":     Rule(lambda a, b: (math.atan(a), _div(1.0, 1.0 + a * a), 0.0),
                     lambda a, b, y, da, db: (-2.0 * a * da * da, 0.0, 0.0)),
    "sinh":     Rule(lambda a, b: (_sinh(a), _cosh(a), 0.0),
                     lambda a, b, y, da, db: (y, 0.0, 0.0)),
    "cosh":     Rule(lambda a, b: (_cosh(a), _sinh(a), 0.0),
                     lambda a, b, y, da, db: (y, 0.0, 0.0)),
    "tanh":     Rule(lambda a, b: (math.tanh(a), 1.0 - math.tanh(a) ** 2, 0.0),
                     lambda a, b, y, da, db: (-2.0 * y * da, 0.0, 0.0)),
    "asinh":    Rule(lambda a, b: (math.asinh(a), _div(1.0, _sqrt(a * a + 1.0)), 0.0),
                     lambda a, b, y, da, db: (-a * da * da * da, 0.0, 0.0)),
    "acosh":    Rule(lambda a, b: (_acosh(a), _div(1.0, _sqrt(a * a - 1.0)), 0.0),
                     lambda a, b, y, da, db: (-a * da * da * da, 0.0, 0.0)),
    "atanh":    Rule(lambda a, b: (_atanh(a), _div(1.0, 1.0 - a * a), 0.0),
                     lambda a, b, y, da, db: (2.0 * a * da * da, 0.0, 0.0)),
    "erf":      Rule(lambda a, b: (math.erf(a), TWO_OVER_SQRT_PI * _exp(-a * a), 0.0),
                     lambda a, b, y, da, db: (-2.0 * a * da, 0.0, 0.0)),
    "erfc":     Rule(lambda a, b: (math.erfc(a), -TWO_OVER_SQRT_PI * _exp(-a * a), 0.0),
                     lambda a, b, y, da, db: (-2.0 * a * da, 0.0, 0.0)),
    "sigmoid":  Rule(lambda a, b: (_sigmoid(a), _sigmoid(a) * (1.0 - _sigmoid(a)), 0.0),
                     lambda a, b, y, da, db: (da * (1.0 - 2.0 * y), 0.0, 0.0)),
    "relu":     Rule(lambda a, b: (_relu(a), _step(a), 0.0), _linear),
    "softplus": Rule(lambda a, b: (_softplus(a), _sigmoid(a), 0.0),
                     lambda a, b, y, da, db: (da * (1.0 - da), 0.0, 0.0)),
}

# ---------------------------------------------------------------------------
# The tape and its variables
# ---------------------------------------------------------------------------

_current_tape = contextvars.ContextVar("wengert_reference_tape", default=None)

CONSTANT_SLOT_BITS = 4                          # a pool of 16 constants per tape
CONSTANT_SLOTS = 2 ** CONSTANT_SLOT_BITS


def _bits(x):
    """The 64 bits of the float ``x`` as an int."""
    return struct.unpack("<Q", struct.pack("<d", x))[0]


class Tape:
    """A Wengert list: one row per operation, kept as parallel lists (columns).

    Row ``i`` is ``op[i]`` (a name in ``RULES``, or "const" or "input"), its
    operand rows ``arg0[i]`` and ``arg1[i]``, the local partials ``d0[i]`` and
    ``d1[i]``, and its ``value[i]``.  Second partials are not stored: the
    second-order loop (``hvp``) computes them from the values when asked.
    Row 0 is a sentinel constant 0.0: rows with fewer than two operands point
    the missing ones at it with partial 0.0, so the backward loop needs no
    special case.  A number in an expression becomes a const row, or reuses an
    equal one from the constant pool (``constant``).  Operands always come
    before their results, so one loop from the output down visits every row
    after all of its uses: no recursion, no topological sort.

    Example:
        >>> with Tape() as tape:
        ...     x = var(3.0)
        ...     y = x * x + 1          # rows: input 3.0, mul, const 1.0, add
        >>> len(tape), tape.op[1:]
        (4, ['input', 'mul', 'const', 'add'])
        >>> tape.gradient(y, [x])
        [6.0]
    """

    def __init__(self):
        self.op, self.arg0, self.arg1 = ["const"], [0], [0]
        self.d0, self.d1, self.value = [0.0], [0.0], [0.0]
        self.epoch, self.born = 0, [0]         # born[i]: the epoch row i was recorded in
        self.adjoint = []                      # filled by backward: d y / d row
        self.tangent = []                      # filled by tangents: d row / dt along a direction
        self.adjoint_tangent = []              # filled by hvp: d adjoint / dt along it
        self.constant_rows = [0] * CONSTANT_SLOTS   # the constant pool; 0: empty
        self._tokens = []

    def __enter__(self):
        self._tokens.append(_current_tape.set(self))
        return self

    def __exit__(self, *exc_info):
        _current_tape.reset(self._tokens.pop())

    def __len__(self):
        return len(self.value) - 1             # the sentinel is not counted

    def push(self, op, arg0, arg1, d0, d1, value):
        """Append one row and return a Var for it."""
        for column, entry in ((self.op, op), (self.arg0, arg0), (self.arg1, arg1), (self.d0, d0),
                              (self.d1, d1), (self.value, value), (self.born, self.epoch)):
            column.append(entry)
        return Var(self, len(self.value) - 1)

    def var(self, x):
        """Return a new input variable with value ``x``."""
        return self.push("input", 0, 0, 0.0, 0.0, float(x))

    def variables(self, seq):
        """Return a list of new input variables, one per number in ``seq``."""
        return [self.var(x) for x in seq]

    def mark(self):
        """Return the current length, to hand to ``rewind`` later."""
        return len(self)

    def rewind(self, mark):
        """Drop every row recorded after ``mark``; their variables become unusable.

        Raises:
            ValueError: ``mark`` is not between 0 and ``len(tape)``.
        """
        if not 0 <= mark <= len(self):
            raise ValueError(f"mark {mark} is outside this tape's 0..{len(self)} rows")
        for column in (self.op, self.arg0, self.arg1, self.d0, self.d1, self.value, self.born,
                       self.adjoint, self.tangent, self.adjoint_tangent):
            del column[mark + 1:]
        self.epoch += 1                        # rows recorded from now on get new ids

    def reset(self):
        """Drop every row but the sentinel."""
        self.rewind(0)

    def row(self, x, where):
        """Row index of ``x``, checked to be a live Var of this tape."""
        if not isinstance(x, Var):
            raise TypeError(f"{where} expects a Var, got {type(x).__name__}")
        if x.tape is not self:
            raise ValueError(f"{where}: cannot combine variables from two different tapes; "
                             "create all variables of one computation on the same tape")
        if x.index >= len(self.value) or self.born[x.index] != x.epoch:
            raise RuntimeError(f"{where}: the variable was dropped by a rewind or reset")
        return x.index

    def operand(self, x, where):
        """Row index of ``x``: a Var of this tape, or a number recorded as a const row."""
        if isinstance(x, (int, float)):
            return self.constant_row(float(x))
        return self.row(x, where)

    def constant_row(self, x):
        """Row of a const holding exactly ``x``: an earlier one if the constant pool
        still points at it, else a new row, which the pool then remembers.

        The pool is a small cache: slot ``(bits * 0x9E3779B97F4A7C15 mod 2**64) >> 60``
        of the float's 64 bits, as in the compiled engine, so both engines record the
        same rows.  An entry counts only while its row exists and holds those exact
        bits (0.0 and -0.0 differ), so rewinds need no bookkeeping.
        """
        bits = _bits(x)
        slot = (bits * 0x9E3779B97F4A7C15 % 2**64) >> (64 - CONSTANT_SLOT_BITS)
        row = self.constant_rows[slot]
        if 0 < row < len(self.value) and self.op[row] == "const" and _bits(self.value[row]) == bits:
            return row
        row = self.push("const", 0, 0, 0.0, 0.0, x).index
        self.constant_rows[slot] = row
        return row

    def backward(self, y, seed=1.0):
        """Set ``v.grad`` to d(seed * y)/dv for every v recorded up to ``y``.

        Gradients are overwritten, never accumulated.

        Raises:
            TypeError, ValueError, RuntimeError: ``y`` is not a live Var of this tape.
        """
        top = self.row(y, "backward()")
        adjoint = [0.0] * (top + 1)
        adjoint[top] = float(seed)
        arg0, arg1, d0, d1 = self.arg0, self.arg1, self.d0, self.d1
        for i in range(top, 0, -1):            # every use of row i comes after it: adjoint final
            g = adjoint[i]
            if g != 0.0:                       # a product with an exact 0 factor adds nothing:
                if d0[i] != 0.0:               # no 0 * inf = nan from rows off the path to y
                    adjoint[arg0[i]] += d0[i] * g
                if d1[i] != 0.0:
                    adjoint[arg1[i]] += d1[i] * g
        self.adjoint = adjoint

    def gradient(self, y, variables):
        """Return [d y / d v for v in variables] as a list of floats."""
        self.backward(y)
        rows = [self.row(v, "gradient()") for v in variables]
        return [self.adjoint[i] if i < len(self.adjoint) else 0.0 for i in rows]

    def tangents(self, variables, direction):
        """Forward mode: the derivative of every row as ``variables`` move along ``direction``.

        Moving input ``variables[k]`` at speed ``direction[k]`` (every other
        input stays put), row i moves at ``tangent[i] = d0[i] * tangent[arg0[i]]
        + d1[i] * tangent[arg1[i]]``: one loop up the tape, operands first.
        Sets and returns ``self.tangent``, one float per row.

        Raises:
            ValueError: a variable is not an input, or the lengths differ.
            TypeError, RuntimeError: a variable is not a live Var of this tape.

        Example:
            >>> with Tape() as tape:
            ...     x, y = variables([3.0, 2.0])
            ...     z = x * y
            >>> tape.tangents([x, y], [1.0, 0.0])[z.index]      # d z / d x
            2.0
        """
        rows = [self.row(v, "tangents()") for v in variables]
        if len(rows) != len(direction):
            raise ValueError(f"tangents(): {len(rows)} variables but a direction of "
                             f"{len(direction)} numbers; give one number per variable")
        tangent = [0.0] * len(self.value)
        for i, speed in zip(rows, direction):
            if self.op[i] != "input":
                raise ValueError(f"tangents(): row {i} is a {self.op[i]!r} row, not an input; "
                                 "directions are given for variables made by var()")
            tangent[i] += float(speed)
        op, arg0, arg1, d0, d1 = self.op, self.arg0, self.arg1, self.d0, self.d1
        for i in range(1, len(tangent)):       # operands come before results: theirs are final
            if op[i] in RULES:                 # const rows stay 0, inputs keep their speed
                tangent[i] = _times(d0[i], tangent[arg0[i]]) + _times(d1[i], tangent[arg1[i]])
        self.tangent = tangent
        return tangent

    def hvp(self, y, variables, direction):
        """Return the Hessian of ``y`` with respect to ``variables``, times ``direction``.

        Forward-over-reverse: the backward loop, differentiated along the
        direction.  Beside each adjoint ``g`` it carries ``g_dot``, the rate
        at which ``g`` changes as ``variables`` move along ``direction``
        (their tangents come first, from ``tangents``).  Where backward adds
        ``d0 * g`` to row ``arg0``'s adjoint, the product rule adds
        ``d0 * g_dot + g * d0_dot`` to its ``g_dot``, and the partial ``d0``
        of row i moves at ``d0_dot = daa * tangent[arg0] + dab * tangent[arg1]``
        (likewise for ``arg1``), from the second partials in ``RULES``.  At the
        inputs ``g_dot`` is the Hessian times the direction.  Sets
        ``self.tangent``, ``self.adjoint`` (as ``backward(y)`` would) and
        ``self.adjoint_tangent``.

        Raises:
            ValueError, TypeError, RuntimeError: as ``tangents`` and ``backward``.

        Example:
            >>> with Tape() as tape:
            ...     x, y = variables([3.0, 2.0])
            ...     z = x * x * y          # Hessian [[2y, 2x], [2x, 0]] = [[4, 6], [6, 0]]
            >>> tape.hvp(z, [x, y], [1.0, 0.0])
            [4.0, 6.0]
        """
        top = self.row(y, "hvp()")
        tangent = self.tangents(variables, direction)
        adjoint, adjoint_tangent = [0.0] * (top + 1), [0.0] * (top + 1)
        adjoint[top] = 1.0
        op, arg0, arg1, d0, d1, value = self.op, self.arg0, self.arg1, self.d0, self.d1, self.value
        for i in range(top, 0, -1):            # every use of row i comes after it: both final
            if op[i] not in RULES:
                continue                       # const and input rows: nothing flows back
            a, b, g, g_dot = arg0[i], arg1[i], adjoint[i], adjoint_tangent[i]
            daa, dab, dbb = RULES[op[i]].second_partials(value[a], value[b], value[i],
                                                         d0[i], d1[i])
            adjoint[a] += _times(d0[i], g)
            adjoint[b] += _times(d1[i], g)
            adjoint_tangent[a] += _times(d0[i], g_dot) + _times(
                g, _times(daa, tangent[a]) + _times(dab, tangent[b]))
            adjoint_tangent[b] += _times(d1[i], g_dot) + _times(
                g, _times(dab, tangent[a]) + _times(dbb, tangent[b]))
        self.adjoint, self.adjoint_tangent = adjoint, adjoint_tangent
        rows = [self.row(v, "hvp()") for v in variables]
        return [adjoint_tangent[i] if i <= top else 0.0 for i in rows]


def current_tape():
    """The innermost ``with Tape()``, or this context's default tape."""
    if _current_tape.get() is None:
        _current_tape.set(Tape())
    return _current_tape.get()


def var(x):
    """Return a new input variable on the current tape (see ``current_tape``)."""
    return current_tape().var(x)


def variables(seq):
    """Return new input variables on the current tape, one per number in ``seq``."""
    return current_tape().variables(seq)


def _unary(op, x):
    if isinstance(x, Var):
        tape = x.tape
        value, d0, _ = RULES[op].partials(tape.value[tape.row(x, op + "()")], 0.0)
        return tape.push(op, x.index, 0, d0, 0.0, value)
    if isinstance(x, (int, float)):
        return RULES[op].partials(float(x), 0.0)[0]
    raise TypeError(f"{op}() expects a Var or a real number, got {type(x).__name__}")


def _binary(op, a, b):
    tape = a.tape if isinstance(a, Var) else b.tape if isinstance(b, Var) else None
    if tape is None:
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            raise TypeError(f"{op}() expects Vars or real numbers, got "
                            f"{type(a).__name__} and {type(b).__name__}")
        return RULES[op].partials(float(a), float(b))[0]
    i, j = tape.operand(a, op + "()"), tape.operand(b, op + "()")   # a number: a const row
    value, d0, d1 = RULES[op].partials(tape.value[i], tape.value[j])
    return tape.push(op, i, j, d0, d1, value)


def _operator(op, reflected=False):
    def method(self, other):
        if not isinstance(other, (Var, int, float)):
            return NotImplemented
        return _binary(op, other, self) if reflected else _binary(op, self, other)
    return method


class Var:
    """A scalar recorded on a tape: row ``index`` of ``tape``.

    Example:
        >>> with Tape():
        ...     w, x, y = variables([1.0, 1.0, 2.0])
        ...     loss = (w * x - y) ** 2
        ...     loss.backward()
        >>> loss, w.grad
        (Var(value=1.0, grad=1.0), -2.0)
    """

    __slots__ = ("tape", "index", "epoch")

    def __init__(self, tape, index):
        self.tape, self.index, self.epoch = tape, index, tape.born[index]

    @property
    def value(self):
        return self.tape.value[self.tape.row(self, "Var.value")]

    @property
    def grad(self):
        """d y / d self after the last ``backward(y)`` on this tape (0.0 if not reached)."""
        i, adjoint = self.tape.row(self, "Var.grad"), self.tape.adjoint
        return adjoint[i] if i < len(adjoint) else 0.0

    def backward(self, seed=1.0):
        """Run the backward loop from this variable; see ``Tape.backward``."""
        self.tape.backward(self, seed)

    def __repr__(self):
        return f"Var(value={self.value!r}, grad={self.grad!r})"

    __add__, __radd__ = _operator("add"), _operator("add", reflected=True)
    __sub__, __rsub__ = _operator("sub"), _operator("sub", reflected=True)
    __mul__, __rmul__ = _operator("mul"), _operator("mul", reflected=True)
    __truediv__, __rtruediv__ = _operator("div"), _operator("div", reflected=True)
    __pow__, __rpow__ = _operator("pow"), _operator("pow", reflected=True)

    def __neg__(self): return _unary("neg", self)
    def __pos__(self): return self
    def __abs__(self): return _unary("abs", self)
    def __float__(self): return self.value
    def __bool__(self): return self.value != 0.0

    # Comparisons look at values and return plain bools, so Python control flow works.
    def __eq__(self, other): return self.value == _value(other)
    def __ne__(self, other): return self.value != _value(other)
    def __lt__(self, other): return self.value < _value(other)
    def __le__(self, other): return self.value <= _value(other)
    def __gt__(self, other): return self.value > _value(other)
    def __ge__(self, other): return self.value >= _value(other)

    __hash__ = object.__hash__                 # identity: == compares values, not nodes


def _value(x):
    return x.value if isinstance(x, Var) else x


def _function(op, arity):
    function = (lambda x: _unary(op, x)) if arity == 1 else (lambda a, b: _binary(op, a, b))
    function.__name__ = function.__qualname__ = op
    function.__doc__ = (f"{op} of a Var (recorded on its tape, returns a Var) or of real numbers "
                        f"(returns a float).  Value and partials: ``RULES[{op!r}]``.")
    return function


exp, expm1, exp2, log, log1p, log2, log10, sqrt, cbrt = (
    _function(op, 1) for op in ("exp", "expm1", "exp2", "log", "log1p", "log2", "log10",
                                "sqrt", "cbrt"))
sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, asinh, acosh, atanh = (
    _function(op, 1) for op in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
                                "tanh", "asinh", "acosh", "atanh"))
erf, erfc, sigmoid, relu, softplus = (
    _function(op, 1) for op in ("erf", "erfc", "sigmoid", "relu", "softplus"))
atan2, hypot, pow, maximum, minimum = (
    _function(op, 2) for op in ("atan2", "hypot", "pow", "maximum", "minimum"))


def _record(fun, x, tape):
    """Record ``fun`` on ``tape`` at x, a number or a 1-D list; return (inputs, output)."""
    inputs = [tape.var(x)] if isinstance(x, (int, float)) else tape.variables(x)
    return inputs, fun(inputs[0] if isinstance(x, (int, float)) else inputs)


def _as_list(v, x):
    """A direction for x (a number or a list) as a list with one number per input."""
    return [v] if isinstance(x, (int, float)) else list(v)


def _like(result, x):
    """A per-input list as what it differentiates: a float for a number x."""
    return result[0] if isinstance(x, (int, float)) else result


def value_and_grad(fun):
    """Turn ``fun`` (of one float, or of a 1-D list of floats) into x -> (value, gradient).

    Args:
        fun: A function of a Var, or of a list of Vars, returning a Var or a number.

    Returns:
        A function returning ``(value, gradient)``: floats for a number argument,
        a float and a list of floats for a list argument.

    Example:
        >>> value_and_grad(lambda x: x[0] * sin(x[1]))([2.0, 0.0])
        (0.0, [0.0, 2.0])
    """
    def value_and_grad_fun(x):
        with Tape() as tape:
            inputs, y = _record(fun, x, tape)
            gradient = tape.gradient(y, inputs) if isinstance(y, Var) else [0.0] * len(inputs)
        return float(y), _like(gradient, x)
    return value_and_grad_fun


def grad(fun):
    """Turn ``fun`` into x -> gradient; see ``value_and_grad``.

    Example:
        >>> grad(lambda x: x ** 3)(2.0)
        12.0
    """
    return lambda x: value_and_grad(fun)(x)[1]


def jvp(fun):
    """Turn ``fun`` into (x, v) -> (value, directional derivative along v), by forward mode.

    Args:
        fun: A function of a Var, or of a list of Vars, returning a Var or a number.

    Returns:
        A function of x and a direction v shaped like x, returning two floats:
        ``fun(x)`` and ``<grad fun(x), v>``, from one ``Tape.tangents`` loop.

    Example:
        >>> jvp(lambda x: x[0] * x[1])([2.0, 3.0], [1.0, 0.0])
        (6.0, 3.0)
        >>> jvp(lambda x: x ** 3)(2.0, 0.5)
        (8.0, 6.0)
    """
    def jvp_fun(x, v):
        with Tape() as tape:
            inputs, y = _record(fun, x, tape)
            if not isinstance(y, Var):
                return float(y), 0.0
            tangent = tape.tangents(inputs, _as_list(v, x))[tape.row(y, "jvp()")]
        return float(y), tangent
    return jvp_fun


def hvp(fun):
    """Turn scalar-valued ``fun`` into (x, v) -> its Hessian at x times v (forward-over-reverse).

    Args:
        fun: A function of a Var, or of a list of Vars, returning a Var or a number.

    Returns:
        A function of x and a direction v shaped like x, returning ``H v``:
        a list of floats (a float for a number x), from one ``Tape.hvp``.

    Example:
        >>> hvp(lambda x: x[0] ** 2 * x[1])([1.0, 2.0], [1.0, 0.0])
        [4.0, 2.0]
    """
    def hvp_fun(x, v):
        with Tape() as tape:
            inputs, y = _record(fun, x, tape)
            direction = _as_list(v, x)
            product = tape.hvp(y, inputs, direction) if isinstance(y, Var) else [0.0] * len(inputs)
        return _like(product, x)
    return hvp_fun


def hessian(fun):
    """Turn scalar-valued ``fun`` into x -> its Hessian: one ``Tape.hvp`` per input.

    Column j is the Hessian times the unit vector e_j.  Computed columns are
    symmetric only up to rounding, so, as in the compiled engine, each entry
    off the diagonal is the mean of its two computed values: the result is
    exactly symmetric.

    Args:
        fun: A function of a Var, or of a list of Vars, returning a Var or a number.

    Returns:
        A function returning the Hessian at x: a list of n lists of n floats
        (a float for a number x).

    Example:
        >>> hessian(lambda x: x[0] ** 3 + x[0] * x[1])([1.0, 2.0])
        [[6.0, 1.0], [1.0, 0.0]]
        >>> hessian(lambda x: x ** 3)(2.0)
        12.0
    """
    def hessian_fun(x):
        with Tape() as tape:
            inputs, y = _record(fun, x, tape)
            n = len(inputs)
            units = [[1.0 if k == j else 0.0 for k in range(n)] for j in range(n)]
            columns = [tape.hvp(y, inputs, unit) if isinstance(y, Var) else [0.0] * n
                       for unit in units]
        rows = [[columns[i][i] if i == j else (columns[j][i] + columns[i][j]) / 2
                 for j in range(n)] for i in range(n)]
        return rows[0][0] if isinstance(x, (int, float)) else rows
    return hessian_fun
