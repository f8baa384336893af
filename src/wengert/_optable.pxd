# cython: language_level=3
"""THE op table: every elementary operation wengert records, in one place.

Each op is one enum value and one branch of ``op_eval``, which returns the
op's value and writes its local partial derivatives.  Every consumer of op
semantics (recording, and later replay, tangent and second-order sweeps) calls
``op_eval``; the reverse sweep never looks at op codes, it only reads the
partials that ``op_eval`` stored.

Operands: ``a`` is the value of the row's first operand (``arg0``) and ``b``
that of its second (``arg1``).  Unary ops ignore ``b`` and must write
``db = 0``; ops with no operands (CONST, INPUT) are never evaluated.

Adding an op touches: the enum (append it in the right group), one branch
below, its name in ``OP_NAMES`` (``_tape.pyx``), its public function
(``_tape.pyx``) and one entry in the test domain table (``tests/optable.py``).

Conventions at non-smooth and out-of-domain points are the README's table;
each is marked ``# convention`` below.
"""

from libc.math cimport (
    NAN, M_LN2, M_LN10,
    acos, acosh, asin, asinh, atan, atan2, atanh, cbrt, cos, cosh, erf, erfc,
    exp, exp2, expm1, fabs, hypot, log, log10, log1p, log2, pow, sin, sinh,
    sqrt, tan, tanh,
)

cdef extern from *:
    """
    #define WENGERT_TWO_OVER_SQRT_PI 1.12837916709551257390
    """
    const double TWO_OVER_SQRT_PI "WENGERT_TWO_OVER_SQRT_PI"


# Group boundaries matter: operand count is derived from them (op_arity).
ctypedef enum OpCode:
    # -- no operands: never evaluated, their value is stored -------------------
    CONST = 0       # a constant; row 0, the sentinel, is CONST 0.0
    INPUT = 1       # an independent variable (wg.var); replay writes new values here
    # -- two operands ----------------------------------------------------------
    ADD = 2
    SUB = 3
    MUL = 4
    DIV = 5
    POW = 6         # a ** b, both variables (or a constant base)
    POW_CONST = 7   # a ** b where arg1 is a CONST row: the exponent's partial is not needed
    ATAN2 = 8       # atan2(a, b) = angle of the point (b, a)
    HYPOT = 9
    MAXIMUM = 10
    MINIMUM = 11
    # -- one operand -----------------------------------------------------------
    NEG = 12
    ABS = 13
    EXP = 14
    EXPM1 = 15
    EXP2 = 16
    LOG = 17
    LOG1P = 18
    LOG2 = 19
    LOG10 = 20
    SQRT = 21
    CBRT = 22
    SIN = 23
    COS = 24
    TAN = 25
    ASIN = 26
    ACOS = 27
    ATAN = 28
    SINH = 29
    COSH = 30
    TANH = 31
    ASINH = 32
    ACOSH = 33
    ATANH = 34
    ERF = 35
    ERFC = 36
    SIGMOID = 37
    RELU = 38
    SOFTPLUS = 39
    N_OPS = 40      # not an op: the number of op codes


cdef inline int op_arity(int op) noexcept nogil:
    """Number of operands of ``op`` (0, 1 or 2), from the enum's groups."""
    if op < ADD:
        return 0
    if op < NEG:
        return 2
    return 1


cdef inline double op_eval(int op, double a, double b,
                           double* da, double* db) noexcept nogil:
    """Value of ``op`` at operands (a, b); writes d value/da and d value/db."""
    cdef double y, t
    db[0] = 0.0
    if op == ADD:
        y = a + b
        da[0] = 1.0; db[0] = 1.0
    elif op == SUB:
        y = a - b
        da[0] = 1.0; db[0] = -1.0
    elif op == MUL:
        y = a * b
        da[0] = b; db[0] = a
    elif op == DIV:
        y = a / b                              # IEEE: 1/0 = inf, 0/0 = nan
        da[0] = 1.0 / b; db[0] = -y / b
    elif op == POW or op == POW_CONST:
        if b == 2.0:                           # exact and cheap: the common square
            y = a * a
            da[0] = 2.0 * a
        else:
            y = pow(a, b)                      # C pow: pow(0, 0) = 1, pow(-8, 1/3) = nan
            # convention: d/da = 0 where b == 0 (a ** 0 is the constant 1, even at a = 0)
            da[0] = 0.0 if b == 0.0 else b * pow(a, b - 1.0)
        if op == POW:
            # convention: d/db = 0 at a == 0 (log(a) * a ** b would be -inf * 0)
            db[0] = 0.0 if a == 0.0 else log(a) * y
    elif op == ATAN2:
        y = atan2(a, b)
        t = a * a + b * b
        if t != 0.0:                           # convention: zero partials at the origin
            da[0] = b / t; db[0] = -a / t
        else:
            da[0] = 0.0
    elif op == HYPOT:
        y = hypot(a, b)
        if y != 0.0:                           # convention: zero partials at the origin
            da[0] = a / y; db[0] = b / y
        else:
            da[0] = 0.0
    elif op == MAXIMUM or op == MINIMUM:
        if a == b:                             # convention: a tie splits the gradient evenly
            y = a
            da[0] = 0.5; db[0] = 0.5
        elif a != a or b != b:                 # NaN propagates, as in numpy and JAX
            y = NAN
            da[0] = NAN; db[0] = NAN
        elif (a > b) == (op == MAXIMUM):
            y = a
            da[0] = 1.0
        else:
            y = b
            da[0] = 0.0; db[0] = 1.0
    elif op == NEG:
        y = -a
        da[0] = -1.0
    elif op == ABS:
        y = fabs(a)
        # convention: d|a|/da = 0 at a == 0 (sign(0) = 0); NaN stays NaN
        da[0] = 1.0 if a > 0.0 else (-1.0 if a < 0.0 else a * 0.0)
    elif op == EXP:
        y = exp(a)
        da[0] = y
    elif op == EXPM1:
        y = expm1(a)
        da[0] = y + 1.0
    elif op == EXP2:
        y = exp2(a)
        da[0] = y * M_LN2
    elif op == LOG:
        y = log(a)                             # log(0) = -inf, log(-1) = nan
        da[0] = 1.0 / a
    elif op == LOG1P:
        y = log1p(a)
        da[0] = 1.0 / (1.0 + a)
    elif op == LOG2:
        y = log2(a)
        da[0] = 1.0 / (a * M_LN2)
    elif op == LOG10:
        y = log10(a)
        da[0] = 1.0 / (a * M_LN10)
    elif op == SQRT:
        y = sqrt(a)
        da[0] = 0.5 / y                        # sqrt'(0) = inf
    elif op == CBRT:
        y = cbrt(a)
        da[0] = 1.0 / (3.0 * y * y)            # cbrt'(0) = inf
    elif op == SIN:
        y = sin(a)
        da[0] = cos(a)
    elif op == COS:
        y = cos(a)
        da[0] = -sin(a)
    elif op == TAN:
        y = tan(a)
        da[0] = 1.0 + y * y
    elif op == ASIN:
        y = asin(a)
        da[0] = 1.0 / sqrt(1.0 - a * a)        # inf at |a| = 1, nan beyond
    elif op == ACOS:
        y = acos(a)
        da[0] = -1.0 / sqrt(1.0 - a * a)
    elif op == ATAN:
        y = atan(a)
        da[0] = 1.0 / (1.0 + a * a)
    elif op == SINH:
        y = sinh(a)
        da[0] = cosh(a)
    elif op == COSH:
        y = cosh(a)
        da[0] = sinh(a)
    elif op == TANH:
        y = tanh(a)
        da[0] = 1.0 - y * y
    elif op == ASINH:
        y = asinh(a)
        da[0] = 1.0 / sqrt(a * a + 1.0)
    elif op == ACOSH:
        y = acosh(a)
        da[0] = 1.0 / sqrt(a * a - 1.0)        # inf at a = 1, nan below
    elif op == ATANH:
        y = atanh(a)
        da[0] = 1.0 / (1.0 - a * a)            # inf at |a| = 1
    elif op == ERF:
        y = erf(a)
        da[0] = TWO_OVER_SQRT_PI * exp(-a * a)
    elif op == ERFC:
        y = erfc(a)
        da[0] = -TWO_OVER_SQRT_PI * exp(-a * a)
    elif op == SIGMOID:
        if a >= 0.0:                           # stable on both tails
            y = 1.0 / (1.0 + exp(-a))
        else:
            t = exp(a)
            y = t / (1.0 + t)
        da[0] = y * (1.0 - y)
    elif op == RELU:
        # convention: relu'(0) = 0; NaN stays NaN
        if a > 0.0:
            y = a
            da[0] = 1.0
        else:
            y = a * 0.0 if a != a else 0.0
            da[0] = y
    elif op == SOFTPLUS:
        # log(1 + exp(a)) without overflow; the slope is sigmoid(a)
        if a >= 0.0:
            t = exp(-a)
            y = a + log1p(t)
            da[0] = 1.0 / (1.0 + t)
        else:
            t = exp(a)
            y = log1p(t)
            da[0] = t / (1.0 + t)
    else:
        # CONST and INPUT are never evaluated, and no other code can reach here:
        # op codes are validated where they enter (recording and loading).
        y = NAN
        da[0] = NAN; db[0] = NAN
    return y


cdef inline void _eval_loop(int op, Py_ssize_t n, const double* a, const double* b,
                            double* y, double* da, double* db) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        y[k] = op_eval(op, a[k], b[k], &da[k], &db[k])


cdef inline void op_eval_many(int op, Py_ssize_t n, const double* a, const double* b,
                              double* y, double* da, double* db) noexcept nogil:
    """``op_eval`` over n points: y[k] = op(a[k], b[k]) with partials da[k], db[k].

    This is dispatch, not math: each branch hands ``_eval_loop`` a constant op
    code, so the C compiler specialises op_eval's switch away inside the loop
    and can vectorise it.  A new op adds one line here.
    """
    if op == ADD: _eval_loop(ADD, n, a, b, y, da, db)
    elif op == SUB: _eval_loop(SUB, n, a, b, y, da, db)
    elif op == MUL: _eval_loop(MUL, n, a, b, y, da, db)
    elif op == DIV: _eval_loop(DIV, n, a, b, y, da, db)
    elif op == POW: _eval_loop(POW, n, a, b, y, da, db)
    elif op == POW_CONST: _eval_loop(POW_CONST, n, a, b, y, da, db)
    elif op == ATAN2: _eval_loop(ATAN2, n, a, b, y, da, db)
    elif op == HYPOT: _eval_loop(HYPOT, n, a, b, y, da, db)
    elif op == MAXIMUM: _eval_loop(MAXIMUM, n, a, b, y, da, db)
    elif op == MINIMUM: _eval_loop(MINIMUM, n, a, b, y, da, db)
    elif op == NEG: _eval_loop(NEG, n, a, b, y, da, db)
    elif op == ABS: _eval_loop(ABS, n, a, b, y, da, db)
    elif op == EXP: _eval_loop(EXP, n, a, b, y, da, db)
    elif op == EXPM1: _eval_loop(EXPM1, n, a, b, y, da, db)
    elif op == EXP2: _eval_loop(EXP2, n, a, b, y, da, db)
    elif op == LOG: _eval_loop(LOG, n, a, b, y, da, db)
    elif op == LOG1P: _eval_loop(LOG1P, n, a, b, y, da, db)
    elif op == LOG2: _eval_loop(LOG2, n, a, b, y, da, db)
    elif op == LOG10: _eval_loop(LOG10, n, a, b, y, da, db)
    elif op == SQRT: _eval_loop(SQRT, n, a, b, y, da, db)
    elif op == CBRT: _eval_loop(CBRT, n, a, b, y, da, db)
    elif op == SIN: _eval_loop(SIN, n, a, b, y, da, db)
    elif op == COS: _eval_loop(COS, n, a, b, y, da, db)
    elif op == TAN: _eval_loop(TAN, n, a, b, y, da, db)
    elif op == ASIN: _eval_loop(ASIN, n, a, b, y, da, db)
    elif op == ACOS: _eval_loop(ACOS, n, a, b, y, da, db)
    elif op == ATAN: _eval_loop(ATAN, n, a, b, y, da, db)
    elif op == SINH: _eval_loop(SINH, n, a, b, y, da, db)
    elif op == COSH: _eval_loop(COSH, n, a, b, y, da, db)
    elif op == TANH: _eval_loop(TANH, n, a, b, y, da, db)
    elif op == ASINH: _eval_loop(ASINH, n, a, b, y, da, db)
    elif op == ACOSH: _eval_loop(ACOSH, n, a, b, y, da, db)
    elif op == ATANH: _eval_loop(ATANH, n, a, b, y, da, db)
    elif op == ERF: _eval_loop(ERF, n, a, b, y, da, db)
    elif op == ERFC: _eval_loop(ERFC, n, a, b, y, da, db)
    elif op == SIGMOID: _eval_loop(SIGMOID, n, a, b, y, da, db)
    elif op == RELU: _eval_loop(RELU, n, a, b, y, da, db)
    elif op == SOFTPLUS: _eval_loop(SOFTPLUS, n, a, b, y, da, db)
