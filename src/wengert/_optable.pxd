# cython: language_level=3
"""THE op table: every elementary operation wengert records, in one place.

Each op is one enum value and one branch of ``op_eval``, which computes the
op's value and its local partial derivatives at ``n`` points at once: one
point when recording, a block of points when a recorded tape is replayed in a
batch.  The loop sits inside each branch so that it runs with a constant op
and the C compiler can vectorise it.  Every consumer of op semantics
(recording, plain numbers, replay) calls ``op_eval``; the reverse sweep never
looks at op codes, it only reads the partials that ``op_eval`` stored.

Operands: ``a[k]`` is the value of the row's first operand (``arg0``) at point
k and ``b[k]`` that of its second (``arg1``).  Unary ops ignore ``b`` and
write ``db = 0``; ops with no operands (CONST, INPUT) are never evaluated.

Adding an op touches: the enum (in the right group), one branch below (and
``op_curvature`` if the op is linear on each piece or has only some second
partials), its name in ``OP_NAMES`` (``_tape.pyx``), its public function
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
    /* sin and cos of one angle: with GCC on glibc, sincos shares the range
       reduction (the same results as sin and cos, in less time but with more
       latency than the two side by side); elsewhere both calls (clang before 20
       has no __builtin_sincos). */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
    #define wengert_sincos(x, s, c) __builtin_sincos((x), (s), (c))
    #else
    #define wengert_sincos(x, s, c) (*(s) = sin(x), *(c) = cos(x))
    #endif
    """
    const double TWO_OVER_SQRT_PI "WENGERT_TWO_OVER_SQRT_PI"
    void sincos "wengert_sincos" (double x, double* sine, double* cosine) noexcept nogil


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


# Which second partials of an op can be nonzero somewhere (bits of op_curvature).
cdef enum:
    CURVES_AA = 1   # d2y/da2
    CURVES_AB = 2   # d2y/dadb
    CURVES_BB = 4   # d2y/db2


cdef inline int op_curvature(int op) noexcept nogil:
    """The second partials ``op_eval`` can make nonzero, as CURVES_* bits.

    0 for ops that are linear on each piece (their second partials are zero
    everywhere, kinks included, by the README's conventions); MUL has only the
    cross term, DIV no d2/da2.  The Hessian's sparsity pattern is built from
    this (``Replay.hessian_structure``); a test checks it against ``op_eval``.
    """
    if (op < ADD or op == ADD or op == SUB or op == NEG or op == ABS or op == RELU
            or op == MAXIMUM or op == MINIMUM):
        return 0
    if op == MUL:
        return CURVES_AB
    if op == DIV:
        return CURVES_AB | CURVES_BB
    if op_arity(op) == 1:
        return CURVES_AA
    return CURVES_AA | CURVES_AB | CURVES_BB


cdef inline void op_eval(int op, Py_ssize_t n, const double* a, const double* b,
                         double* y, double* da, double* db,
                         double* daa, double* dab, double* dbb) noexcept nogil:
    """y[k] = op(a[k], b[k]), da[k] = d y / d a, db[k] = d y / d b, for k < n.

    With ``daa`` not NULL, also the second partials daa = d2y/da2,
    dab = d2y/dadb and dbb = d2y/db2 (for second-order sweeps).
    """
    cdef Py_ssize_t k
    cdef double t, u, w, sine, cosine
    cdef bint second = daa != NULL
    if second:                                 # unary ops and linear ops keep these zero
        for k in range(n):
            daa[k] = 0.0
            dab[k] = 0.0
            dbb[k] = 0.0
    if op == ADD:
        for k in range(n):
            y[k] = a[k] + b[k]
            da[k] = 1.0
            db[k] = 1.0
    elif op == SUB:
        for k in range(n):
            y[k] = a[k] - b[k]
            da[k] = 1.0
            db[k] = -1.0
    elif op == MUL:
        for k in range(n):
            t = a[k]
            u = b[k]
            y[k] = t * u
            da[k] = u
            db[k] = t
        if second:
            for k in range(n):
                dab[k] = 1.0
    elif op == DIV:
        for k in range(n):
            t = a[k] / b[k]                    # IEEE: 1/0 = inf, 0/0 = nan
            y[k] = t
            da[k] = 1.0 / b[k]
            db[k] = -t / b[k]
        if second:
            for k in range(n):
                dab[k] = -1.0 / (b[k] * b[k])
                dbb[k] = 2.0 * y[k] / (b[k] * b[k])
    elif op == POW or op == POW_CONST:
        for k in range(n):
            if b[k] == 2.0:                    # exact and cheap: the common square
                t = a[k] * a[k]
                da[k] = 2.0 * a[k]
            else:
                t = pow(a[k], b[k])            # C pow: pow(0, 0) = 1, pow(-8, 1/3) = nan
                # convention: d/da = 0 where b == 0 (a ** 0 is the constant 1, even at a = 0)
                da[k] = 0.0 if b[k] == 0.0 else b[k] * pow(a[k], b[k] - 1.0)
            y[k] = t
            # POW_CONST: arg1 is a constant, whose partial is never needed.
            # convention: d/db = 0 at a == 0 (log(a) * a ** b would be -inf * 0)
            db[k] = 0.0 if (op == POW_CONST or a[k] == 0.0) else log(a[k]) * t
        if second:
            for k in range(n):
                if b[k] == 2.0:
                    daa[k] = 2.0
                elif b[k] != 0.0 and b[k] != 1.0:
                    # convention: 0 where a ** b is linear or constant in a
                    daa[k] = b[k] * (b[k] - 1.0) * pow(a[k], b[k] - 2.0)
                if op == POW and a[k] != 0.0:          # convention: like d/db, 0 at a == 0
                    dab[k] = pow(a[k], b[k] - 1.0) * (1.0 + b[k] * log(a[k]))
                    dbb[k] = log(a[k]) * log(a[k]) * y[k]
    elif op == ATAN2:
        for k in range(n):
            y[k] = atan2(a[k], b[k])
            t = hypot(a[k], b[k])              # not a*a + b*b, which under- or overflows
            # convention: zero partials at the origin
            da[k] = (b[k] / t) / t if t != 0.0 else 0.0
            db[k] = (-a[k] / t) / t if t != 0.0 else 0.0
        if second:
            # (-2ab, a*a - b*b, 2ab) / r**4, written with the unit vector (u, w) =
            # (a, b) / r and divided by r twice: r**4 and a*b leave the range
            for k in range(n):
                t = hypot(a[k], b[k])
                if t != 0.0:                           # convention: zero at the origin
                    u = a[k] / t
                    w = b[k] / t
                    daa[k] = -2.0 * u * w / t / t
                    dab[k] = (u - w) * (u + w) / t / t
                    dbb[k] = 2.0 * u * w / t / t
    elif op == HYPOT:
        for k in range(n):
            t = hypot(a[k], b[k])
            y[k] = t
            # convention: zero partials at the origin
            da[k] = a[k] / t if t != 0.0 else 0.0
            db[k] = b[k] / t if t != 0.0 else 0.0
        if second:
            for k in range(n):
                t = y[k]
                if t != 0.0:                           # convention: zero at the origin
                    daa[k] = (b[k] / t) * (b[k] / t) / t
                    dab[k] = -(a[k] / t) * (b[k] / t) / t
                    dbb[k] = (a[k] / t) * (a[k] / t) / t
    elif op == MAXIMUM or op == MINIMUM:
        for k in range(n):
            t = a[k]
            u = b[k]
            if t == u:                         # convention: a tie splits the gradient evenly
                y[k] = t
                da[k] = 0.5
                db[k] = 0.5
            elif t != t or u != u:             # NaN propagates, as in numpy and JAX
                y[k] = NAN
                da[k] = NAN
                db[k] = NAN
            elif (t > u) == (op == MAXIMUM):
                y[k] = t
                da[k] = 1.0
                db[k] = 0.0
            else:
                y[k] = u
                da[k] = 0.0
                db[k] = 1.0
    elif op == NEG:
        for k in range(n):
            y[k] = -a[k]
            da[k] = -1.0
            db[k] = 0.0
    elif op == ABS:
        for k in range(n):
            t = a[k]
            y[k] = fabs(t)
            # convention: d|a|/da = 0 at a == 0 (sign(0) = 0); NaN stays NaN
            da[k] = 1.0 if t > 0.0 else (-1.0 if t < 0.0 else t * 0.0)
            db[k] = 0.0
    elif op == EXP:
        for k in range(n):
            t = exp(a[k])
            y[k] = t
            da[k] = t
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = y[k]
    elif op == EXPM1:
        for k in range(n):
            y[k] = expm1(a[k])
            da[k] = exp(a[k])                  # not expm1(a) + 1, which loses exp(a) for a << 0
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = da[k]
    elif op == EXP2:
        for k in range(n):
            t = exp2(a[k])
            y[k] = t
            da[k] = t * M_LN2
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = da[k] * M_LN2
    elif op == LOG:
        for k in range(n):
            y[k] = log(a[k])                   # log(0) = -inf, log(-1) = nan
            da[k] = 1.0 / a[k]
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -da[k] * da[k]
    elif op == LOG1P:
        for k in range(n):
            y[k] = log1p(a[k])
            da[k] = 1.0 / (1.0 + a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -da[k] * da[k]
    elif op == LOG2:
        for k in range(n):
            y[k] = log2(a[k])
            da[k] = 1.0 / (a[k] * M_LN2)
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -da[k] / a[k]
    elif op == LOG10:
        for k in range(n):
            y[k] = log10(a[k])
            da[k] = 1.0 / (a[k] * M_LN10)
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -da[k] / a[k]
    elif op == SQRT:
        for k in range(n):
            t = sqrt(a[k])
            y[k] = t
            da[k] = 0.5 / t                    # sqrt'(0) = inf
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -0.5 * da[k] / a[k]          # -1 / (4 a sqrt(a))
    elif op == CBRT:
        for k in range(n):
            t = cbrt(a[k])
            y[k] = t
            da[k] = 1.0 / (3.0 * t * t)        # cbrt'(0) = inf
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -2.0 * da[k] / (3.0 * a[k])
    elif op == SIN or op == COS:
        if n == 1:
            # One point: two calls that run side by side (a chain of rows waits
            # on the slower one).  a[0] is reloaded after the store to y[0], which
            # may alias it, so GCC does not merge the calls into one sincos.
            if op == SIN:
                y[0] = sin(a[0])
                da[0] = cos(a[0])
            else:
                y[0] = cos(a[0])
                da[0] = -sin(a[0])
            db[0] = 0.0
        else:
            # A block of points: sincos does the range reduction once (less work
            # in all, the same results).
            for k in range(n):
                sincos(a[k], &sine, &cosine)
                y[k] = sine if op == SIN else cosine
                da[k] = cosine if op == SIN else -sine
                db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -y[k]
    elif op == TAN:
        for k in range(n):
            t = tan(a[k])
            y[k] = t
            da[k] = 1.0 + t * t
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = 2.0 * y[k] * da[k]
    elif op == ASIN:
        for k in range(n):
            y[k] = asin(a[k])
            da[k] = 1.0 / sqrt(1.0 - a[k] * a[k])     # inf at |a| = 1, nan beyond
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = a[k] * da[k] * da[k] * da[k]
    elif op == ACOS:
        for k in range(n):
            y[k] = acos(a[k])
            da[k] = -1.0 / sqrt(1.0 - a[k] * a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = a[k] * da[k] * da[k] * da[k]
    elif op == ATAN:
        for k in range(n):
            y[k] = atan(a[k])
            da[k] = 1.0 / (1.0 + a[k] * a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -2.0 * a[k] * da[k] * da[k]
    elif op == SINH:
        for k in range(n):
            y[k] = sinh(a[k])
            da[k] = cosh(a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = y[k]
    elif op == COSH:
        for k in range(n):
            y[k] = cosh(a[k])
            da[k] = sinh(a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = y[k]
    elif op == TANH:
        for k in range(n):
            t = tanh(a[k])
            y[k] = t
            da[k] = 1.0 - t * t
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -2.0 * y[k] * da[k]
    elif op == ASINH:
        for k in range(n):
            y[k] = asinh(a[k])
            da[k] = 1.0 / sqrt(a[k] * a[k] + 1.0)
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -a[k] * da[k] * da[k] * da[k]
    elif op == ACOSH:
        for k in range(n):
            y[k] = acosh(a[k])
            da[k] = 1.0 / sqrt(a[k] * a[k] - 1.0)     # inf at a = 1, nan below
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -a[k] * da[k] * da[k] * da[k]
    elif op == ATANH:
        for k in range(n):
            y[k] = atanh(a[k])
            da[k] = 1.0 / (1.0 - a[k] * a[k])         # inf at |a| = 1
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = 2.0 * a[k] * da[k] * da[k]
    elif op == ERF:
        for k in range(n):
            y[k] = erf(a[k])
            da[k] = TWO_OVER_SQRT_PI * exp(-a[k] * a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -2.0 * a[k] * da[k]
    elif op == ERFC:
        for k in range(n):
            y[k] = erfc(a[k])
            da[k] = -TWO_OVER_SQRT_PI * exp(-a[k] * a[k])
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = -2.0 * a[k] * da[k]
    elif op == SIGMOID:
        for k in range(n):
            if a[k] >= 0.0:                    # stable on both tails
                t = 1.0 / (1.0 + exp(-a[k]))
            else:
                u = exp(a[k])
                t = u / (1.0 + u)
            y[k] = t
            da[k] = t * (1.0 - t)
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = da[k] * (1.0 - 2.0 * y[k])
    elif op == RELU:
        for k in range(n):
            t = a[k]
            # convention: relu'(0) = 0; NaN stays NaN
            y[k] = t if (t > 0.0 or t != t) else 0.0
            da[k] = 1.0 if t > 0.0 else (t if t != t else 0.0)
            db[k] = 0.0
    elif op == SOFTPLUS:
        for k in range(n):
            # log(1 + exp(a)) without overflow; the slope is sigmoid(a)
            if a[k] >= 0.0:
                u = exp(-a[k])
                y[k] = a[k] + log1p(u)
                da[k] = 1.0 / (1.0 + u)
            else:
                u = exp(a[k])
                y[k] = log1p(u)
                da[k] = u / (1.0 + u)
            db[k] = 0.0
        if second:
            for k in range(n):
                daa[k] = da[k] * (1.0 - da[k])
    else:
        # CONST and INPUT are never evaluated, and no other code can reach here:
        # op codes are validated where they enter (recording and loading).
        for k in range(n):
            y[k] = NAN
            da[k] = NAN
            db[k] = NAN
