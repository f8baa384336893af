# cython: language_level=3
"""The compiled core: Tape and Var, recording, the reverse sweep.

This is the only module that touches raw memory.  The layout of a tape is
documented field by field in ``_tape.pxd``; op semantics live only in
``_optable.pxd``.
"""

cimport cython
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.long cimport PyLong_AsDouble, PyLong_Check
from libc.stdint cimport INT32_MAX, int32_t, uint8_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memset

from wengert._optable cimport (
    CONST, INPUT, N_OPS, OpCode, op_arity, op_eval,
    ADD, SUB, MUL, DIV, POW, POW_CONST, ATAN2, HYPOT, MAXIMUM, MINIMUM,
    NEG, ABS, EXP, EXPM1, EXP2, LOG, LOG1P, LOG2, LOG10, SQRT, CBRT,
    SIN, COS, TAN, ASIN, ACOS, ATAN, SINH, COSH, TANH, ASINH, ACOSH, ATANH,
    ERF, ERFC, SIGMOID, RELU, SOFTPLUS,
)

import math
import numbers
from contextvars import ContextVar

import numpy as np

#: Name of every op code, in op-code order (the enum in ``_optable.pxd``).
OP_NAMES = (
    "const", "input",
    "add", "sub", "mul", "div", "pow", "pow_const", "atan2", "hypot", "maximum", "minimum",
    "neg", "abs", "exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "cbrt",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
    "atanh", "erf", "erfc", "sigmoid", "relu", "softplus",
)
if len(OP_NAMES) != N_OPS:  # pragma: no cover - caught by any build that edits the enum
    raise ImportError("OP_NAMES and the OpCode enum in _optable.pxd disagree")

#: Operand count of every op code, derived from the enum's groups.
OP_ARITY = tuple(op_arity(i) for i in range(N_OPS))

cdef enum:
    ROW_BYTES = 1 + 4 + 4 + 8 + 8 + 8   # one row over the six columns of _tape.pxd

_current_tape = ContextVar("wengert_current_tape", default=None)


# --------------------------------------------------------------------------
# Memory: the one checked reallocation helper
# --------------------------------------------------------------------------

cdef int safe_realloc(void** pointer, Py_ssize_t n_items, size_t item_size) except -1:
    """Resize ``*pointer`` to ``n_items`` items, or raise MemoryError leaving it intact."""
    cdef void* grown
    if n_items <= 0 or <size_t>n_items > (<size_t>-1) // item_size:
        raise MemoryError(f"cannot allocate {n_items} items of {item_size} bytes")
    grown = realloc(pointer[0], <size_t>n_items * item_size)
    if grown == NULL:
        raise MemoryError(f"out of memory growing the tape to {n_items} rows "
                          f"({n_items * item_size} bytes for one column)")
    pointer[0] = grown
    return 0


# --------------------------------------------------------------------------
# Python numbers at the boundary
# --------------------------------------------------------------------------

cdef inline bint as_double(object x, double* out) except -1:
    """Store ``x`` as a double if it is a real number (not a Var); return whether it was."""
    if PyFloat_Check(x):                     # float and numpy.float64
        out[0] = PyFloat_AS_DOUBLE(x)
        return True
    if PyLong_Check(x):                      # int and bool
        out[0] = PyLong_AsDouble(x)          # OverflowError for ints beyond double range
        return True
    if isinstance(x, numbers.Real) and not isinstance(x, Var):   # numpy.float32, Fraction, ...
        out[0] = float(x)
        return True
    return False


cdef double real_argument(object x, str where) except? -1.0:
    cdef double d
    if not as_double(x, &d):
        raise TypeError(f"{where} expects a real number, got {type(x).__name__}")
    return d


# --------------------------------------------------------------------------
# Tape
# --------------------------------------------------------------------------

@cython.final
cdef class Tape:
    """A Wengert list that records every elementary operation on its variables.

    Args:
        capacity: Rows to allocate up front; the tape doubles when full.

    Use it as a context manager to make it the current tape of this thread
    or context, so ``wg.var`` and ``wg.variables`` record on it:

    >>> import wengert as wg
    >>> with wg.Tape() as tape:
    ...     x, y, z = wg.variables([1.0, 3.0, -3.0])
    ...     g = (x + y) * z
    ...     g.backward()
    >>> g.value, x.grad, y.grad, z.grad
    (-12.0, -3.0, -3.0, 4.0)
    >>> len(tape)        # three inputs, one add, one mul
    5
    """

    def __cinit__(self, Py_ssize_t capacity=1024):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._tokens = []
        self._grow(capacity + 1)
        # Row 0: the sentinel, a CONST 0.0 that unused operands point at.
        self.op[0] = CONST
        self.arg0[0] = 0
        self.arg1[0] = 0
        self.d0[0] = 0.0
        self.d1[0] = 0.0
        self.value[0] = 0.0
        self.n_rows = 1

    def __dealloc__(self):
        free(self.op); free(self.arg0); free(self.arg1)
        free(self.d0); free(self.d1); free(self.value)
        free(self.adjoint); free(self.cut_epoch); free(self.cut_rows)

    # -- recording (the hot path) -------------------------------------------

    cdef int _grow(self, Py_ssize_t min_rows) except -1:
        cdef Py_ssize_t new_capacity = max(min_rows, 2 * self.capacity)
        if self.sweeping:
            raise RuntimeError("cannot record on a tape while another thread runs a "
                               "backward pass on it; use one tape per thread")
        if min_rows > <Py_ssize_t>INT32_MAX:
            raise MemoryError(f"a tape holds at most {INT32_MAX} rows")
        new_capacity = min(new_capacity, <Py_ssize_t>INT32_MAX)
        # Each column is grown in turn; if one fails the others are merely
        # larger than needed and capacity is unchanged, so nothing is lost.
        safe_realloc(<void**>&self.op, new_capacity, sizeof(uint8_t))
        safe_realloc(<void**>&self.arg0, new_capacity, sizeof(int32_t))
        safe_realloc(<void**>&self.arg1, new_capacity, sizeof(int32_t))
        safe_realloc(<void**>&self.d0, new_capacity, sizeof(double))
        safe_realloc(<void**>&self.d1, new_capacity, sizeof(double))
        safe_realloc(<void**>&self.value, new_capacity, sizeof(double))
        self.capacity = new_capacity
        return 0

    cdef Py_ssize_t push(self, int op, Py_ssize_t a, Py_ssize_t b) except -1:
        """Append an op row on operand rows a and b (0 for none); return its index."""
        cdef Py_ssize_t i = self.n_rows
        if i == self.capacity:
            self._grow(i + 1)
        self.op[i] = <uint8_t>op
        self.arg0[i] = <int32_t>a
        self.arg1[i] = <int32_t>b
        self.value[i] = op_eval(op, self.value[a], self.value[b], &self.d0[i], &self.d1[i])
        self.n_rows = i + 1
        return i

    cdef Py_ssize_t push_leaf(self, int op, double value) except -1:
        """Append a CONST or INPUT row holding ``value``; return its index."""
        cdef Py_ssize_t i = self.n_rows
        if i == self.capacity:
            self._grow(i + 1)
        self.op[i] = <uint8_t>op
        self.arg0[i] = 0              # row 0 is the sentinel
        self.arg1[i] = 0
        self.d0[i] = 0.0
        self.d1[i] = 0.0
        self.value[i] = value
        self.n_rows = i + 1
        return i

    cdef Var new_var(self, Py_ssize_t row):
        cdef Var v = Var.__new__(Var)
        v.tape = self
        v.index = row
        v.epoch = self.epoch
        return v

    # -- lifetime of variables ---------------------------------------------

    cdef int check_alive(self, Var v) except -1:
        # Same epoch: no rewind since v was last checked, so its row exists.
        if v.epoch == self.epoch:
            return 0
        return self._revalidate(v)

    cdef int _revalidate(self, Var v) except -1:
        cdef Py_ssize_t low = 0, high = self.n_cuts, middle
        # The first cut begun after v.epoch kept the fewest rows of all later cuts.
        while low < high:
            middle = (low + high) // 2
            if self.cut_epoch[middle] > v.epoch:
                high = middle
            else:
                low = middle + 1
        if low < self.n_cuts and v.index >= self.cut_rows[low]:
            raise RuntimeError(
                f"this variable (row {v.index}) was dropped by tape.rewind() or "
                "tape.reset(), so its value no longer exists; create variables you "
                "keep before tape.mark(), or create them again after the rewind")
        v.epoch = self.epoch
        return 0

    cdef int check_var(self, object x, str where) except -1:
        if type(x) is not Var:
            raise TypeError(f"{where} expects a wengert Var, got {type(x).__name__}")
        if (<Var>x).tape is not self:
            raise ValueError(f"{where}: the variable belongs to a different tape")
        return self.check_alive(<Var>x)

    # -- public API ----------------------------------------------------------

    def __len__(self):
        """Rows recorded on this tape, not counting the sentinel row 0."""
        return self.n_rows - 1

    @property
    def nbytes(self):
        """Bytes held by the recorded rows (33 per row, sentinel included).

        Like ``numpy.ndarray.nbytes``, this counts rows in use.  See
        ``allocated_nbytes`` for memory reserved by doubling and for gradients.
        """
        return self.n_rows * ROW_BYTES

    @property
    def allocated_nbytes(self):
        """Bytes allocated: row capacity, the adjoint buffer and the rewind stack."""
        return (self.capacity * ROW_BYTES + self.adjoint_capacity * sizeof(double)
                + self.cuts_capacity * (sizeof(uint64_t) + sizeof(Py_ssize_t)))

    def __repr__(self):
        return f"<wengert.Tape with {self.n_rows - 1} rows at {hex(id(self))}>"

    def __enter__(self):
        self._tokens.append(_current_tape.set(self))
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        _current_tape.reset(self._tokens.pop())
        return False

    def var(self, value):
        """Create an input variable on this tape.

        Args:
            value: A real number.

        Returns:
            A new ``Var`` whose ``.value`` can later be reassigned.

        Raises:
            TypeError: ``value`` is not a real number.
        """
        return self.new_var(self.push_leaf(INPUT, real_argument(value, "Tape.var()")))

    def variables(self, values):
        """Create one input variable per number of a 1-D sequence or array.

        Args:
            values: A 1-D sequence or ndarray of real numbers.

        Returns:
            A list of new ``Var``.

        Raises:
            TypeError: An element is not a real number.
            ValueError: ``values`` is not one-dimensional.
        """
        cdef double[::1] data = _as_float_vector(values, "Tape.variables()")
        cdef Py_ssize_t k
        return [self.new_var(self.push_leaf(INPUT, data[k])) for k in range(data.shape[0])]

    def mark(self):
        """Return the current length, to hand to ``rewind`` later."""
        return self.n_rows - 1

    def rewind(self, Py_ssize_t mark):
        """Drop every row recorded after ``mark`` (a value from ``mark()``).

        Variables created before the mark stay valid; using a dropped one
        raises ``RuntimeError``.  This is how a training loop keeps its
        parameters and discards each step's graph.

        >>> import wengert as wg
        >>> tape = wg.Tape()
        >>> w = tape.var(2.0)
        >>> start = tape.mark()
        >>> for step in range(3):
        ...     loss = (w * 3.0 - 1.0) ** 2
        ...     loss.backward()
        ...     w.value -= 0.01 * w.grad
        ...     tape.rewind(start)
        >>> len(tape), round(w.value, 6)
        (1, 1.25228)
        """
        cdef Py_ssize_t kept = mark + 1
        if mark < 0 or kept > self.n_rows:
            raise ValueError(f"mark {mark} is outside this tape's 0..{self.n_rows - 1} rows")
        if kept == self.n_rows:
            return                       # nothing dropped, every variable stays valid
        if self.n_cuts == self.cuts_capacity:
            self.cuts_capacity = max(8, 2 * self.cuts_capacity)
            safe_realloc(<void**>&self.cut_epoch, self.cuts_capacity, sizeof(uint64_t))
            safe_realloc(<void**>&self.cut_rows, self.cuts_capacity, sizeof(Py_ssize_t))
        self.epoch += 1
        while self.n_cuts > 0 and self.cut_rows[self.n_cuts - 1] >= kept:
            self.n_cuts -= 1
        self.cut_epoch[self.n_cuts] = self.epoch
        self.cut_rows[self.n_cuts] = kept
        self.n_cuts += 1
        self.n_rows = kept
        self.grad_rows = min(self.grad_rows, kept)

    def reset(self):
        """Drop all rows (allocated memory is kept for reuse)."""
        self.rewind(0)

    # -- the reverse sweep -------------------------------------------------

    cdef int _prepare_adjoint(self) except -1:
        if self.adjoint_capacity < self.n_rows:
            if self.sweeping:
                raise RuntimeError("another thread is running a backward pass on this tape")
            safe_realloc(<void**>&self.adjoint, self.capacity, sizeof(double))
            self.adjoint_capacity = self.capacity
        return 0

    cdef int _sweep(self, Py_ssize_t top, double seed) except -1:
        """Adjoints of rows 0..top for the output row ``top``; validated by the caller."""
        self._prepare_adjoint()
        self.sweeping += 1
        try:
            with nogil:
                reverse_sweep(self.arg0, self.arg1, self.d0, self.d1, self.adjoint, top, seed)
        finally:
            self.sweeping -= 1
        self.grad_rows = top + 1
        return 0

    def backward(self, y, double seed=1.0):
        """Compute d(seed * y)/d(row) for every row up to ``y``; read them as ``.grad``.

        Gradients are overwritten, never accumulated: calling it twice gives
        the same result.  Runs in C without the GIL, iteratively (no depth limit).

        Args:
            y: A Var on this tape.
            seed: The adjoint of ``y`` (1.0 for the gradient of ``y`` itself).

        Raises:
            TypeError: ``y`` is not a Var.
            ValueError: ``y`` belongs to another tape.
            RuntimeError: ``y`` was dropped by a rewind.
        """
        self.check_var(y, "Tape.backward()")
        self._sweep((<Var>y).index, seed)

    def gradient(self, y, variables):
        """Return d y / d v for each ``v`` in ``variables`` as a float64 array.

        >>> import wengert as wg
        >>> tape = wg.Tape()
        >>> x = tape.variables([1.0, 2.0])
        >>> tape.gradient(x[0] * x[1], x)
        array([2., 1.])
        """
        cdef list wrt = list(variables)
        cdef object v
        cdef Py_ssize_t k
        self.check_var(y, "Tape.gradient()")
        for v in wrt:
            self.check_var(v, "Tape.gradient()")
        self._sweep((<Var>y).index, 1.0)
        out = np.empty(len(wrt), dtype=np.float64)
        cdef double[::1] view = out
        cdef Py_ssize_t row
        for k in range(len(wrt)):
            row = (<Var>wrt[k]).index
            view[k] = self.adjoint[row] if row < self.grad_rows else 0.0   # above y: 0
        return out

    def to_arrays(self):
        """Copy the rows (the sentinel row 0 included) into numpy arrays.

        Returns:
            A dict with ``op`` (uint8), ``arg0`` and ``arg1`` (int32) and
            ``d0``, ``d1`` and ``value`` (float64), each of length ``len(tape) + 1``.
        """
        cdef Py_ssize_t n = self.n_rows
        arrays = {
            "op": np.empty(n, dtype=np.uint8),
            "arg0": np.empty(n, dtype=np.int32),
            "arg1": np.empty(n, dtype=np.int32),
            "d0": np.empty(n, dtype=np.float64),
            "d1": np.empty(n, dtype=np.float64),
            "value": np.empty(n, dtype=np.float64),
        }
        cdef uint8_t[::1] op = arrays["op"]
        cdef int32_t[::1] arg0 = arrays["arg0"], arg1 = arrays["arg1"]
        cdef double[::1] d0 = arrays["d0"], d1 = arrays["d1"], value = arrays["value"]
        memcpy(&op[0], self.op, n * sizeof(uint8_t))
        memcpy(&arg0[0], self.arg0, n * sizeof(int32_t))
        memcpy(&arg1[0], self.arg1, n * sizeof(int32_t))
        memcpy(&d0[0], self.d0, n * sizeof(double))
        memcpy(&d1[0], self.d1, n * sizeof(double))
        memcpy(&value[0], self.value, n * sizeof(double))
        return arrays


cdef void reverse_sweep(const int32_t* arg0, const int32_t* arg1,
                        const double* d0, const double* d1, double* adjoint,
                        Py_ssize_t top, double seed) noexcept nogil:
    """Accumulate adjoints from row ``top`` down to row 1 (the whole reverse mode)."""
    cdef Py_ssize_t i
    cdef double g
    memset(adjoint, 0, (top + 1) * sizeof(double))
    adjoint[top] = seed
    for i in range(top, 0, -1):
        g = adjoint[i]
        # An exact zero propagates nothing: rows off the path to y must not turn
        # a gradient into NaN through 0 * inf (README, conventions).
        if g != 0.0:
            adjoint[arg0[i]] += d0[i] * g
            adjoint[arg1[i]] += d1[i] * g    # unary rows: arg1 = 0 (sentinel), d1 = 0


cdef double[::1] _as_float_vector(object values, str where):
    if isinstance(values, Var) or isinstance(values, (str, bytes)):
        raise TypeError(f"{where} expects a sequence of real numbers, got {type(values).__name__}")
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where} expects a sequence of real numbers: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{where} expects a 1-D sequence, got an array of shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{where} expects real numbers, got elements of dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float64)


def current_tape():
    """Return the tape ``wg.var`` records on: the innermost ``with Tape()``, or this
    thread's (context's) default tape, created on first use."""
    tape = _current_tape.get()
    if tape is None:
        tape = Tape()
        _current_tape.set(tape)
    return tape


def var(value):
    """Create an input variable on the current tape (see ``current_tape``).

    >>> import wengert as wg
    >>> with wg.Tape():
    ...     x = wg.var(3.0)
    ...     y = x * x
    ...     y.backward()
    >>> y.value, x.grad
    (9.0, 6.0)
    """
    return (<Tape>current_tape()).var(value)


def variables(values):
    """Create input variables on the current tape, one per number of ``values``."""
    return (<Tape>current_tape()).variables(values)


# --------------------------------------------------------------------------
# Recording ops: the only code that turns Python calls into rows
# --------------------------------------------------------------------------

cdef object record_binary(int op, object left, object right):
    """Record ``op(left, right)`` where at least one side is a Var.

    A number on either side becomes a CONST row.  Returns NotImplemented for
    any other type, so Python raises its usual TypeError.
    """
    cdef Var a, b
    cdef Tape tape
    cdef double constant
    cdef Py_ssize_t ia, ib
    if type(left) is Var:
        a = <Var>left
        tape = a.tape
        tape.check_alive(a)
        if type(right) is Var:
            b = <Var>right
            if b.tape is not tape:
                raise_two_tapes(a, b)
            tape.check_alive(b)
            ib = b.index
        elif as_double(right, &constant):
            ib = tape.push_leaf(CONST, constant)
            if op == POW:
                op = POW_CONST           # the exponent's partial is never needed
        else:
            return NotImplemented
        ia = a.index
    else:
        b = <Var>right
        tape = b.tape
        tape.check_alive(b)
        if not as_double(left, &constant):
            return NotImplemented
        ia = tape.push_leaf(CONST, constant)
        ib = b.index
    return tape.new_var(tape.push(op, ia, ib))


cdef inline object record_unary(int op, Var a):
    cdef Tape tape = a.tape
    tape.check_alive(a)
    return tape.new_var(tape.push(op, a.index, 0))


cdef int raise_two_tapes(Var a, Var b) except -1:
    raise ValueError(
        f"cannot combine variables from two different tapes ({a.tape!r} and {b.tape!r}); "
        "create every variable of one computation on the same tape, e.g. inside one "
        "`with wg.Tape():` block")


cdef object apply_unary(int op, object x):
    """A math function's body: record on a Var, or evaluate a plain number."""
    cdef double a, partial
    if type(x) is Var:
        return record_unary(op, <Var>x)
    if as_double(x, &a):
        return op_eval(op, a, 0.0, &partial, &partial)
    raise TypeError(f"{OP_NAMES[op]}() expects a wengert Var or a real number, "
                    f"got {type(x).__name__}")


cdef object apply_binary(int op, object x, object y):
    """A two-argument math function's body (Var or number on either side)."""
    cdef double a, b, partial
    cdef object result
    if type(x) is Var or type(y) is Var:
        result = record_binary(op, x, y)
        if result is not NotImplemented:
            return result
    elif as_double(x, &a) and as_double(y, &b):
        return op_eval(op, a, b, &partial, &partial)
    raise TypeError(f"{OP_NAMES[op]}() expects wengert Vars or real numbers, "
                    f"got {type(x).__name__} and {type(y).__name__}")


# --------------------------------------------------------------------------
# Var
# --------------------------------------------------------------------------

@cython.final
@cython.freelist(1024)
@cython.no_gc     # a Var refers only to its Tape, which refers to no Var: no cycles
cdef class Var:
    """A scalar variable recorded on a tape.

    Create input variables with ``wg.var``, ``wg.variables`` or ``Tape.var``;
    every arithmetic operation or math function applied to a Var records a
    row and returns a new Var.  Comparisons return plain ``bool`` from the
    values, so Python control flow works.

    >>> import wengert as wg
    >>> with wg.Tape():
    ...     w, x, y = wg.variables([1.0, 1.0, 2.0])
    ...     loss = (w * x - y) ** 2
    ...     loss.backward()
    >>> loss
    Var(value=1.0, grad=1.0)
    >>> w.grad
    -2.0
    """

    def __init__(self, *args, **kwargs):
        raise TypeError("create variables with wg.var(), wg.variables() or Tape.var()")

    @property
    def value(self):
        """The variable's value (assignable on input variables only)."""
        self.tape.check_alive(self)
        return self.tape.value[self.index]

    @value.setter
    def value(self, new_value):
        self.tape.check_alive(self)
        if self.tape.op[self.index] != INPUT:
            raise ValueError(
                f"cannot assign the value of a computed variable (row {self.index}, "
                f"op {OP_NAMES[self.tape.op[self.index]]!r}); only input variables from "
                "wg.var()/wg.variables() can be updated, and rows already recorded from "
                "them keep their old values")
        self.tape.value[self.index] = real_argument(new_value, "Var.value")

    @property
    def grad(self):
        """d y / d self after the last ``backward(y)`` on this tape (0.0 if not reached)."""
        self.tape.check_alive(self)
        if self.index < self.tape.grad_rows:
            return self.tape.adjoint[self.index]
        return 0.0

    def backward(self, double seed=1.0):
        """Run the reverse sweep from this variable; see ``Tape.backward``."""
        self.tape.check_alive(self)
        self.tape._sweep(self.index, seed)

    def __repr__(self):
        if self.epoch != self.tape.epoch:
            try:
                self.tape.check_alive(self)
            except RuntimeError:
                return f"<Var of row {self.index}, dropped by a rewind>"
        return f"Var(value={self.value!r}, grad={self.grad!r})"

    def __hash__(self):
        return object.__hash__(self)      # identity, like micrograd's Value

    # -- arithmetic (Cython 3: reflected methods are separate) -----------------

    def __add__(self, other):
        return record_binary(ADD, self, other)

    def __radd__(self, other):
        return record_binary(ADD, other, self)

    def __sub__(self, other):
        return record_binary(SUB, self, other)

    def __rsub__(self, other):
        return record_binary(SUB, other, self)

    def __mul__(self, other):
        return record_binary(MUL, self, other)

    def __rmul__(self, other):
        return record_binary(MUL, other, self)

    def __truediv__(self, other):
        return record_binary(DIV, self, other)

    def __rtruediv__(self, other):
        return record_binary(DIV, other, self)

    def __pow__(self, other, modulo):
        if modulo is not None:
            return NotImplemented
        return record_binary(POW, self, other)

    def __rpow__(self, other, modulo):
        if modulo is not None:
            return NotImplemented
        return record_binary(POW, other, self)

    def __neg__(self):
        return record_unary(NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return record_unary(ABS, self)

    # -- conversions and comparisons: plain values ---------------------------

    def __float__(self):
        return self.value

    def __int__(self):
        return int(self.value)

    def __bool__(self):
        return self.value != 0.0

    def __round__(self, ndigits=None):
        return round(self.value, ndigits)

    def __trunc__(self):
        return int(self.value)

    def __floor__(self):
        return math.floor(self.value)

    def __ceil__(self):
        return math.ceil(self.value)

    def __lt__(self, other):
        return _compare_values(self, other, 0)

    def __le__(self, other):
        return _compare_values(self, other, 1)

    def __eq__(self, other):
        return _compare_values(self, other, 2)

    def __ne__(self, other):
        return _compare_values(self, other, 3)

    def __gt__(self, other):
        return _compare_values(self, other, 4)

    def __ge__(self, other):
        return _compare_values(self, other, 5)

    # -- methods, so numpy object arrays (np.exp(a), np.tanh(a)) and micrograd habits work --

    def exp(self): return record_unary(EXP, self)
    def expm1(self): return record_unary(EXPM1, self)
    def exp2(self): return record_unary(EXP2, self)
    def log(self): return record_unary(LOG, self)
    def log1p(self): return record_unary(LOG1P, self)
    def log2(self): return record_unary(LOG2, self)
    def log10(self): return record_unary(LOG10, self)
    def sqrt(self): return record_unary(SQRT, self)
    def cbrt(self): return record_unary(CBRT, self)
    def sin(self): return record_unary(SIN, self)
    def cos(self): return record_unary(COS, self)
    def tan(self): return record_unary(TAN, self)
    def arcsin(self): return record_unary(ASIN, self)
    def arccos(self): return record_unary(ACOS, self)
    def arctan(self): return record_unary(ATAN, self)
    def sinh(self): return record_unary(SINH, self)
    def cosh(self): return record_unary(COSH, self)
    def tanh(self): return record_unary(TANH, self)
    def arcsinh(self): return record_unary(ASINH, self)
    def arccosh(self): return record_unary(ACOSH, self)
    def arctanh(self): return record_unary(ATANH, self)
    def sigmoid(self): return record_unary(SIGMOID, self)
    def relu(self): return record_unary(RELU, self)
    def softplus(self): return record_unary(SOFTPLUS, self)


cdef object _compare_values(Var self, object other, int how):
    cdef double a = self.value, b
    if type(other) is Var:
        b = (<Var>other).value
    elif not as_double(other, &b):
        return NotImplemented
    if how == 0:
        return a < b
    if how == 1:
        return a <= b
    if how == 2:
        return a == b
    if how == 3:
        return a != b
    if how == 4:
        return a > b
    return a >= b


# --------------------------------------------------------------------------
# Math functions: Var in, Var out; number in, float out (IEEE results)
# --------------------------------------------------------------------------

def exp(x):
    """e ** x.

    >>> import wengert as wg
    >>> wg.exp(0.0)
    1.0
    """
    return apply_unary(EXP, x)

def expm1(x):
    """e ** x - 1, accurate for small x."""
    return apply_unary(EXPM1, x)

def exp2(x):
    """2 ** x."""
    return apply_unary(EXP2, x)

def log(x):
    """Natural logarithm; log(0) = -inf and log(x < 0) = nan (IEEE), never an exception.

    >>> import wengert as wg
    >>> wg.log(0.0)
    -inf
    """
    return apply_unary(LOG, x)

def log1p(x):
    """log(1 + x), accurate for small x."""
    return apply_unary(LOG1P, x)

def log2(x):
    """Base-2 logarithm."""
    return apply_unary(LOG2, x)

def log10(x):
    """Base-10 logarithm."""
    return apply_unary(LOG10, x)

def sqrt(x):
    """Square root; sqrt(x < 0) = nan, and its derivative at 0 is inf."""
    return apply_unary(SQRT, x)

def cbrt(x):
    """Real cube root (defined for negative x); its derivative at 0 is inf."""
    return apply_unary(CBRT, x)

def sin(x):
    """Sine (radians).

    >>> import wengert as wg
    >>> with wg.Tape():
    ...     x = wg.var(0.0)
    ...     y = wg.sin(x)
    ...     y.backward()
    >>> y.value, x.grad
    (0.0, 1.0)
    """
    return apply_unary(SIN, x)

def cos(x):
    """Cosine (radians)."""
    return apply_unary(COS, x)

def tan(x):
    """Tangent (radians)."""
    return apply_unary(TAN, x)

def asin(x):
    """Arc sine; nan outside [-1, 1], derivative inf at ±1."""
    return apply_unary(ASIN, x)

def acos(x):
    """Arc cosine; nan outside [-1, 1], derivative -inf at ±1."""
    return apply_unary(ACOS, x)

def atan(x):
    """Arc tangent."""
    return apply_unary(ATAN, x)

def sinh(x):
    """Hyperbolic sine."""
    return apply_unary(SINH, x)

def cosh(x):
    """Hyperbolic cosine."""
    return apply_unary(COSH, x)

def tanh(x):
    """Hyperbolic tangent."""
    return apply_unary(TANH, x)

def asinh(x):
    """Inverse hyperbolic sine."""
    return apply_unary(ASINH, x)

def acosh(x):
    """Inverse hyperbolic cosine; nan below 1, derivative inf at 1."""
    return apply_unary(ACOSH, x)

def atanh(x):
    """Inverse hyperbolic tangent; ±inf at ±1."""
    return apply_unary(ATANH, x)

def erf(x):
    """Error function."""
    return apply_unary(ERF, x)

def erfc(x):
    """Complementary error function, 1 - erf(x), accurate for large x."""
    return apply_unary(ERFC, x)

def sigmoid(x):
    """Logistic function 1 / (1 + e ** -x), computed without overflow."""
    return apply_unary(SIGMOID, x)

def relu(x):
    """max(x, 0), with derivative 0 at x = 0.

    >>> import wengert as wg
    >>> wg.relu(-2.0), wg.relu(3)
    (0.0, 3.0)
    """
    return apply_unary(RELU, x)

def softplus(x):
    """log(1 + e ** x), computed without overflow; its derivative is sigmoid(x)."""
    return apply_unary(SOFTPLUS, x)

def atan2(y, x):
    """Angle of the point (x, y), like ``math.atan2(y, x)``; zero partials at the origin."""
    return apply_binary(ATAN2, y, x)

def hypot(x, y):
    """sqrt(x * x + y * y) without overflow; zero partials at the origin."""
    return apply_binary(HYPOT, x, y)

def pow(x, y):
    """x ** y with C (IEEE) semantics: pow(0, -1) = inf, pow(-8, 1/3) = nan.

    >>> import wengert as wg
    >>> wg.pow(2, 10), wg.pow(0.0, -1.0)
    (1024.0, inf)
    """
    return apply_binary(POW, x, y)

def maximum(x, y):
    """The larger of x and y; at a tie each receives half the gradient.

    >>> import wengert as wg
    >>> with wg.Tape():
    ...     a, b = wg.variables([2.0, 2.0])
    ...     m = wg.maximum(a, b)
    ...     m.backward()
    >>> m.value, a.grad, b.grad
    (2.0, 0.5, 0.5)
    """
    return apply_binary(MAXIMUM, x, y)

def minimum(x, y):
    """The smaller of x and y; at a tie each receives half the gradient."""
    return apply_binary(MINIMUM, x, y)
