# cython: language_level=3
"""The compiled core: Tape and Var, recording, the reverse sweep.

This is the only module that touches raw memory.  The layout of a tape is
documented field by field in ``_tape.pxd``; op semantics live only in
``_optable.pxd``.
"""

cimport cython
from cpython.buffer cimport (
    PyBUF_ANY_CONTIGUOUS, PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_Check
from cpython.long cimport PyLong_AsDouble, PyLong_Check
from libc.stdint cimport INT32_MAX, int32_t, uint8_t, uint64_t
from libc.math cimport ceil, floor, rint, trunc
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

from wengert._optable cimport (
    CONST, INPUT, N_OPS, op_arity, op_curvature, op_eval, CURVES_AA, CURVES_AB, CURVES_BB,
    ADD, SUB, MUL, DIV, POW, POW_CONST, ATAN2, HYPOT, MAXIMUM, MINIMUM,
    NEG, ABS, EXP, EXPM1, EXP2, LOG, LOG1P, LOG2, LOG10, SQRT, CBRT,
    SIN, COS, TAN, ASIN, ACOS, ATAN, SINH, COSH, TANH, ASINH, ACOSH, ATANH,
    ERF, ERFC, SIGMOID, RELU, SOFTPLUS,
)

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

#: Which second partials of every op code can be nonzero: a subset of "aa",
#: "ab", "bb" (d2/da2, d2/dadb, d2/db2), from ``op_curvature``.
OP_CURVATURE = tuple(
    frozenset(name for bit, name in ((CURVES_AA, "aa"), (CURVES_AB, "ab"), (CURVES_BB, "bb"))
              if op_curvature(i) & bit)
    for i in range(N_OPS))

cdef enum:
    ROW_BYTES = 1 + 4 + 4 + 8 + 8 + 8   # one row over the six columns of _tape.pxd

_current_tape = ContextVar("wengert_current_tape", default=None)


# --------------------------------------------------------------------------
# Spare sets of row buffers
# --------------------------------------------------------------------------
# A new tape's memory costs a page fault per 4 KiB on first touch, which
# doubles the recording time of a tape used once (wg.grad records on a fresh
# tape at every call).  A freed tape therefore leaves its buffers here, up to
# SPARE_BYTES in all, for the next tape to reuse.  Several sets, because
# wg.record holds two tapes at once (the recording and its replay's reordered
# copy), next to whatever tapes the caller keeps.  Only touched with the GIL
# held (Tape.__cinit__ and __dealloc__), so no lock is needed.

cdef struct RowBuffers:
    uint8_t*   op
    int32_t*   arg0
    int32_t*   arg1
    double*    d0
    double*    d1
    double*    value
    Py_ssize_t capacity
    double*    adjoint
    Py_ssize_t adjoint_capacity

cdef enum:
    SPARE_SETS = 3
    SPARE_BYTES = 64 << 20               # all sets together
cdef RowBuffers spares[SPARE_SETS]     # capacity 0: nothing spare in that set


cdef inline Py_ssize_t spare_bytes(const RowBuffers* buffers) noexcept nogil:
    """Bytes held by a spare set (0 when empty)."""
    return 0 if buffers.capacity == 0 else (
        buffers.capacity * ROW_BYTES + buffers.adjoint_capacity * sizeof(double))


cdef enum:
    # Sweeps over fewer rows run with the GIL held (Tape._sweep, Replay.point):
    # releasing and retaking it costs about as much as sweeping a few hundred rows.
    GIL_RELEASE_ROWS = 1024


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
        if capacity < 1 or capacity >= INT32_MAX:
            raise ValueError(f"capacity must be between 1 and {INT32_MAX - 1} rows, got {capacity}")
        cdef RowBuffers* spare = NULL
        cdef Py_ssize_t k
        self._tokens = []
        for k in range(SPARE_SETS):     # the largest spare set that fits: a tape grows
            if spares[k].capacity > capacity and (
                    spare == NULL or spares[k].capacity > spare.capacity):
                spare = &spares[k]
        if spare != NULL:
            self.op, self.arg0, self.arg1 = spare.op, spare.arg0, spare.arg1
            self.d0, self.d1, self.value = spare.d0, spare.d1, spare.value
            self.capacity = self.allocated = spare.capacity
            self.adjoint, self.adjoint_capacity = spare.adjoint, spare.adjoint_capacity
            spare.capacity = 0
        else:
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
        cdef RowBuffers* spare = NULL
        cdef Py_ssize_t k, held = 0
        free(self.cut_epoch); free(self.cut_rows)
        for k in range(SPARE_SETS):
            held += spare_bytes(&spares[k])
            if spares[k].capacity == 0:
                spare = &spares[k]
        if self.allocated > 0 and spare != NULL:
            spare.capacity, spare.adjoint_capacity = self.allocated, self.adjoint_capacity
            if held + spare_bytes(spare) <= SPARE_BYTES:
                spare.op, spare.arg0, spare.arg1 = self.op, self.arg0, self.arg1
                spare.d0, spare.d1, spare.value = self.d0, self.d1, self.value
                spare.adjoint = self.adjoint
                return
            spare.capacity = 0                    # all spare sets together stay within the cap
        free(self.op); free(self.arg0); free(self.arg1)
        free(self.d0); free(self.d1); free(self.value)
        free(self.adjoint)

    # -- recording (the hot path) -------------------------------------------

    cdef int _grow(self, Py_ssize_t min_rows) except -1:
        cdef Py_ssize_t new_capacity = max(min_rows, 2 * self.capacity)
        if self.frozen:
            raise RuntimeError("this tape belongs to a recorded function (wg.record) and "
                               "records nothing more; use another tape")
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
        self.capacity = self.allocated = new_capacity
        return 0

    cdef Py_ssize_t push(self, int op, Py_ssize_t a, Py_ssize_t b) except -1:
        """Append an op row on operand rows a and b (0 for none); return its index."""
        cdef Py_ssize_t i = self.n_rows
        if i == self.capacity:
            self._grow(i + 1)
        self.op[i] = <uint8_t>op
        self.arg0[i] = <int32_t>a
        self.arg1[i] = <int32_t>b
        op_eval(op, 1, &self.value[a], &self.value[b], &self.value[i], &self.d0[i], &self.d1[i],
                NULL, NULL, NULL)
        self.n_rows = i + 1
        if self.first_op == 0:
            self.first_op = i
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

    cdef Py_ssize_t push_constant(self, double value) except -1:
        """The row of a CONST holding exactly ``value``: an earlier one from the
        constant pool when it still holds those bits (-0.0 and 0.0 differ; a NaN
        matches its own payload), else a new row, remembered in the pool."""
        cdef uint64_t bits, held
        memcpy(&bits, &value, sizeof(double))
        # Fibonacci hashing: the top bits of bits * 2^64 / golden ratio.
        cdef Py_ssize_t slot = <Py_ssize_t>(
            (bits * 0x9E3779B97F4A7C15ULL) >> (64 - CONSTANT_SLOT_BITS))
        cdef Py_ssize_t row = self.constant_rows[slot]
        if 0 < row < self.n_rows and self.op[row] == CONST:
            memcpy(&held, &self.value[row], sizeof(double))
            if held == bits:
                return row
        row = self.push_leaf(CONST, value)
        self.constant_rows[slot] = row
        return row

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
        return alive(<Var>x)

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
        return (self.allocated * ROW_BYTES + self.adjoint_capacity * sizeof(double)
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

    def constant(self, value):
        """Record a constant row and return it as a Var (replay keeps its value)."""
        return self.new_var(self.push_leaf(CONST, real_argument(value, "Tape.constant()")))

    def copy(self):
        """A new tape with a copy of every row (variables stay on this tape)."""
        cdef Tape other = Tape(capacity=self.n_rows)
        memcpy(other.op, self.op, self.n_rows * sizeof(uint8_t))
        memcpy(other.arg0, self.arg0, self.n_rows * sizeof(int32_t))
        memcpy(other.arg1, self.arg1, self.n_rows * sizeof(int32_t))
        memcpy(other.d0, self.d0, self.n_rows * sizeof(double))
        memcpy(other.d1, self.d1, self.n_rows * sizeof(double))
        memcpy(other.value, self.value, self.n_rows * sizeof(double))
        other.n_rows = self.n_rows
        other.first_op = self.first_op
        return other

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
        cdef Py_ssize_t kept, grown
        if mark < 0 or mark >= self.n_rows:
            raise ValueError(f"mark {mark} is outside this tape's 0..{self.n_rows - 1} rows")
        if self.sweeping:
            raise RuntimeError("cannot rewind a tape while another thread runs a backward "
                               "pass on it")
        if self.frozen:
            raise RuntimeError("this tape belongs to a recorded function (wg.record) and "
                               "cannot be rewound")
        kept = mark + 1
        if kept == self.n_rows:
            return                       # nothing dropped, every variable stays valid
        if self.n_cuts == self.cuts_capacity:
            grown = max(8, 2 * self.cuts_capacity)
            safe_realloc(<void**>&self.cut_epoch, grown, sizeof(uint64_t))
            safe_realloc(<void**>&self.cut_rows, grown, sizeof(Py_ssize_t))
            self.cuts_capacity = grown
        self.epoch += 1
        while self.n_cuts > 0 and self.cut_rows[self.n_cuts - 1] >= kept:
            self.n_cuts -= 1
        self.cut_epoch[self.n_cuts] = self.epoch
        self.cut_rows[self.n_cuts] = kept
        self.n_cuts += 1
        self.n_rows = kept
        if self.first_op >= kept:
            self.first_op = 0
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
        if self.sweeping:
            raise RuntimeError("another thread is running a backward pass on this tape; "
                               "use one tape per thread (wg.grad and wg.record do)")
        self._prepare_adjoint()
        cdef Py_ssize_t bottom = max(self.first_op, 1)    # rows below: leaves (first_op)
        if top < GIL_RELEASE_ROWS:
            # Releasing and retaking the GIL costs about as much as sweeping a few
            # hundred rows, and no other thread could use so short a window (numpy
            # keeps the GIL for small arrays likewise).  Nothing here can raise or
            # run Python code, so no other thread sees the tape mid-sweep.
            reverse_sweep(self.arg0, self.arg1, self.d0, self.d1, self.adjoint, top, seed,
                          bottom)
        else:
            self.sweeping += 1
            try:
                with nogil:
                    reverse_sweep(self.arg0, self.arg1, self.d0, self.d1, self.adjoint, top,
                                  seed, bottom)
            finally:
                self.sweeping -= 1
        self.grad_rows = top + 1
        self.backward_passes += 1
        return 0

    def backward(self, y, double seed=1.0):
        """Compute d(seed * y)/d(row) for every row up to ``y``; read them as ``.grad``.

        Gradients are overwritten, never accumulated: calling it twice gives
        the same result.  Runs in C, iteratively (no depth limit), and without
        the GIL when it sweeps 1,024 rows or more (a shorter sweep costs less
        than releasing the GIL would).

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
                        Py_ssize_t top, double seed, Py_ssize_t bottom) noexcept nogil:
    """Accumulate adjoints from row ``top`` down to row ``bottom`` (the whole
    reverse mode).  Rows below ``bottom`` must be leaves, which pass nothing on:
    on a tape, its first op row (the inputs recorded before it, e.g. a model's
    parameters, are never visited); on a replay's leaves-first copy, its first
    computed row."""
    cdef Py_ssize_t i
    cdef double g, carry = 0.0
    cdef bint carried = False
    memset(adjoint, 0, (top + 1) * sizeof(double))
    adjoint[top] = seed
    for i in range(top, bottom - 1, -1):
        # ``carry`` is row i + 1's contribution to row i when it was the last one,
        # kept in a register: a chain of rows, each the operand of the next, then
        # waits on an add rather than on a store and a load through memory.  It is
        # added last, as it would have been: the same sums, bit for bit.
        g = adjoint[i]
        if carried:
            g += carry
            adjoint[i] = g
            carried = False
        # A product with an exact zero factor contributes nothing (README, conventions):
        # rows off the path to y have g == 0 and must not turn a gradient into NaN
        # through 0 * inf.  Skipping zero partials also spares the sentinel's adjoint
        # (the target of every unused operand) a read-modify-write chain through memory.
        if g != 0.0:
            if d1[i] != 0.0 and arg1[i] == i - 1:      # operand b's comes last
                if d0[i] != 0.0:
                    adjoint[arg0[i]] += d0[i] * g
                carry = d1[i] * g
                carried = True
            else:
                if d0[i] != 0.0:
                    if arg0[i] == i - 1:
                        carry = d0[i] * g
                        carried = True
                    else:
                        adjoint[arg0[i]] += d0[i] * g
                if d1[i] != 0.0:
                    adjoint[arg1[i]] += d1[i] * g
    if carried:
        adjoint[bottom - 1] += carry


cdef bint _float64_vector(object x, Py_buffer* view, Py_ssize_t n) except -1:
    """Acquire x's buffer if it is a contiguous 1-D float64 array of n numbers
    (return True; the caller releases it), else return False holding nothing."""
    try:
        PyObject_GetBuffer(x, view, PyBUF_ANY_CONTIGUOUS | PyBUF_FORMAT)
    except (BufferError, TypeError, ValueError):   # e.g. a strided view: not this path
        return False
    if view.ndim != 1 or view.len != n * sizeof(double) or view.format == NULL \
            or view.format[0] != b'd' or view.format[1] != 0:
        PyBuffer_Release(view)
        return False
    return True


cdef inline void _release(Py_buffer* view, bint held) noexcept:
    """Release a buffer acquired by ``_float64_vector`` (or PyObject_GetBuffer), if held."""
    if held:
        PyBuffer_Release(view)


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

cdef inline int alive(Var v) except -1:
    """Raise unless v's row still exists (see Tape.check_alive)."""
    if v.tape is None:           # only Var.__new__(Var) from Python makes one
        raise TypeError("this Var was not created by wengert; create variables with "
                        "wg.var(), wg.variables() or Tape.var()")
    return v.tape.check_alive(v)


cdef object record_binary(int op, object left, object right):
    """Record ``op(left, right)`` where at least one side is a Var.

    A number on either side becomes a CONST row (or reuses an equal one:
    Tape.push_constant).  Returns NotImplemented for any other type, so Python
    raises its usual TypeError.
    """
    cdef Var a, b
    cdef Tape tape
    cdef double constant
    cdef Py_ssize_t ia, ib, i
    # Numbers are converted first: float(x) of a numpy or user type may run Python
    # code (even a rewind), so rows are checked and read only afterwards.
    if type(left) is Var:
        a = <Var>left
        if type(right) is Var:
            b = <Var>right
            alive(a)
            alive(b)
            if b.tape is not a.tape:
                raise_two_tapes(a, b)
            tape = a.tape
            ib = b.index
        elif as_double(right, &constant):
            alive(a)
            tape = a.tape
            ib = tape.push_constant(constant)
            if op == POW:
                op = POW_CONST           # the exponent's partial is never needed
            i = tape.push(op, a.index, ib)
            # A constant needs no adjoint: with a zero partial its row receives an
            # exact zero, and the reverse sweep passes it with a single load.
            tape.d1[i] = 0.0
            return tape.new_var(i)
        else:
            return NotImplemented
        ia = a.index
    else:
        b = <Var>right
        if not as_double(left, &constant):
            return NotImplemented
        alive(b)
        tape = b.tape
        ia = tape.push_constant(constant)
        i = tape.push(op, ia, b.index)
        tape.d0[i] = 0.0                 # the constant's partial, as above
        return tape.new_var(i)
    return tape.new_var(tape.push(op, ia, ib))


cdef inline object record_unary(int op, Var a):
    alive(a)
    return a.tape.new_var(a.tape.push(op, a.index, 0))


cdef int raise_two_tapes(Var a, Var b) except -1:
    raise ValueError(
        f"cannot combine variables from two different tapes ({a.tape!r} and {b.tape!r}); "
        "create every variable of one computation on the same tape, e.g. inside one "
        "`with wg.Tape():` block")


cdef object apply_unary(int op, object x):
    """A math function's body: record on a Var, or evaluate a plain number."""
    cdef double a, b = 0.0, y, da, db
    if type(x) is Var:
        return record_unary(op, <Var>x)
    if as_double(x, &a):
        op_eval(op, 1, &a, &b, &y, &da, &db, NULL, NULL, NULL)
        return y
    raise TypeError(f"{OP_NAMES[op]}() expects a wengert Var or a real number, "
                    f"got {type(x).__name__}")


cdef object apply_binary(int op, object x, object y):
    """A two-argument math function's body (Var or number on either side)."""
    cdef double a, b, value, da, db
    cdef object result
    if type(x) is Var or type(y) is Var:
        result = record_binary(op, x, y)
        if result is not NotImplemented:
            return result
    elif as_double(x, &a) and as_double(y, &b):
        op_eval(op, 1, &a, &b, &value, &da, &db, NULL, NULL, NULL)
        return value
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
        """The variable's value (assignable on input variables only).

        While ``wg.record`` records, reading it bakes the number into the
        recorded function, so it is recorded as a guard that replay checks.
        """
        cdef double value = value_of(self)
        if self.tape.guards is not None:
            self.tape.guards.append((GUARD_VALUE, self.index, 0, value))
        return value

    @value.setter
    def value(self, new_value):
        alive(self)
        if self.tape.sweeping or self.tape.frozen:
            raise RuntimeError("cannot assign a value while a backward pass runs on its tape, "
                               "or on a tape that belongs to a recorded function")
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
        alive(self)
        if self.index < self.tape.grad_rows:
            return self.tape.adjoint[self.index]
        return 0.0

    def backward(self, double seed=1.0):
        """Run the reverse sweep from this variable; see ``Tape.backward``."""
        alive(self)
        self.tape._sweep(self.index, seed)

    def __repr__(self):
        if self.tape is None:
            return "<Var not created by wengert>"
        if self.epoch != self.tape.epoch:
            try:
                alive(self)
            except RuntimeError:
                return f"<Var of row {self.index}, dropped by a rewind>"
        return f"Var(value={value_of(self)!r}, grad={self.grad!r})"

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
        return converted(self, GUARD_VALUE, value_of(self))

    def __int__(self):
        return int(converted(self, GUARD_TRUNC, trunc(value_of(self))))

    def __trunc__(self):
        return int(converted(self, GUARD_TRUNC, trunc(value_of(self))))

    def __floor__(self):
        return int(converted(self, GUARD_FLOOR, floor(value_of(self))))

    def __ceil__(self):
        return int(converted(self, GUARD_CEIL, ceil(value_of(self))))

    def __round__(self, ndigits=None):
        if ndigits is None:
            return int(converted(self, GUARD_ROUND, rint(value_of(self))))  # half to even
        # the rounded number depends on the exact value: guard that (strict but right)
        return round(converted(self, GUARD_VALUE, value_of(self)), ndigits)

    def __bool__(self):
        return converted(self, GUARD_TRUTH, value_of(self) != 0.0) != 0.0

    def __lt__(self, other):
        return _compare_values(self, other, GUARD_LT)

    def __le__(self, other):
        return _compare_values(self, other, GUARD_LE)

    def __eq__(self, other):
        return _compare_values(self, other, GUARD_EQ)

    def __ne__(self, other):
        return _compare_values(self, other, GUARD_NE)

    def __gt__(self, other):
        return _compare_values(self, other, GUARD_GT)

    def __ge__(self, other):
        return _compare_values(self, other, GUARD_GE)

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


cdef inline double value_of(Var v) except? -1.0:
    """A Var's value for wengert's own use: checked alive, never a guard."""
    alive(v)
    return v.tape.value[v.index]


cdef double converted(Var v, int kind, double result) except? -1.0:
    """Return ``result``, a conversion of v to a Python number, logging a guard
    while recording for replay (the number is baked into the recorded code)."""
    if v.tape.guards is not None:
        v.tape.guards.append((kind, v.index, 0, result))
    return result


cdef object _compare_values(Var self, object other, int how):
    """Compare values (how: GUARD_LT..GUARD_GE); log guards while recording for replay."""
    cdef double a, b
    cdef Py_ssize_t row_b = -1
    cdef bint outcome
    if type(other) is Var:
        b = value_of(<Var>other)
        if (<Var>other).tape is self.tape:
            row_b = (<Var>other).index
    elif not as_double(other, &b):        # may run Python: values are read afterwards
        return NotImplemented
    a = value_of(self)
    outcome = guard_holds(how, a, b, 1.0)
    log_comparison(self, how, row_b, b, outcome)
    if type(other) is Var and (<Var>other).tape is not self.tape:
        # seen from the other tape, this is `other <reflected how> a`
        log_comparison(<Var>other, how if how == GUARD_EQ or how == GUARD_NE else (how + 4) % 8,
                       -1, a, outcome)
    return outcome


cdef int log_comparison(Var v, int how, Py_ssize_t row_b, double b, bint outcome) except -1:
    """While v's tape records for replay, log `v <how> row_b` (a CONST row holding b
    when row_b < 0) with its outcome."""
    if v.tape.guards is None:
        return 0
    if row_b < 0:
        row_b = v.tape.push_constant(b)
    v.tape.guards.append((how, v.index, row_b, 1.0 if outcome else 0.0))
    return 0


cdef inline bint guard_holds(int kind, double a, double b, double expected) noexcept nogil:
    """Whether a guard recorded with outcome ``expected`` holds at values a (row a), b (row b)."""
    cdef bint outcome
    if kind == GUARD_LT:
        outcome = a < b
    elif kind == GUARD_LE:
        outcome = a <= b
    elif kind == GUARD_EQ:
        outcome = a == b
    elif kind == GUARD_NE:
        outcome = a != b
    elif kind == GUARD_GT:
        outcome = a > b
    elif kind == GUARD_GE:
        outcome = a >= b
    elif kind == GUARD_VALUE:
        return a == expected or (a != a and expected != expected)
    elif kind == GUARD_TRUNC:
        return trunc(a) == expected
    elif kind == GUARD_FLOOR:
        return floor(a) == expected
    elif kind == GUARD_CEIL:
        return ceil(a) == expected
    elif kind == GUARD_ROUND:
        return rint(a) == expected
    else:                         # GUARD_TRUTH
        outcome = a != 0.0
    return outcome == (expected != 0.0)


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


# --------------------------------------------------------------------------
# Replay: a recorded tape evaluated at new inputs, in C, without the GIL
# --------------------------------------------------------------------------

#: Names of the guard kinds (GuardKind in _tape.pxd), for messages.
GUARD_NAMES = ("<", "<=", "==", "!=", ">", ">=", "float", "int", "floor", "ceil", "round", "bool")

# Points per workspace in a batched replay: enough for the inner loops to
# vectorise and to share each row's dispatch, few enough that a chunk's rows stay
# in cache.  At least 16 (measured: the MLP's 22,000 rows 20% faster than with 8).
cdef enum:
    MAX_CHUNK = 256
    MIN_CHUNK = 16
    CHUNK_BYTES = 1 << 21
    HESSIAN_LANE_BYTES = 12 << 20


@cython.final
cdef class Workspace:
    """Per-call buffers of a replay (layout in _tape.pxd)."""

    def __cinit__(self, Replay replay, Py_ssize_t points):
        cdef Tape tape = replay.tape
        cdef Py_ssize_t rows = tape.n_rows, n = rows * points, i, k
        self.rows = rows
        self.points = points
        safe_realloc(<void**>&self.value, n, sizeof(double))
        safe_realloc(<void**>&self.d0, n, sizeof(double))
        safe_realloc(<void**>&self.d1, n, sizeof(double))
        safe_realloc(<void**>&self.adjoint, n, sizeof(double))
        # Leaf rows keep their recorded values and zero partials; replay
        # overwrites the inputs and recomputes every other row.
        memset(self.d0, 0, n * sizeof(double))
        memset(self.d1, 0, n * sizeof(double))
        for i in range(rows):
            for k in range(points):
                self.value[i * points + k] = tape.value[i]

    cdef int ensure_second_order(self) except -1:
        cdef Py_ssize_t n = self.rows * self.points
        if self.tangent != NULL:
            return 0
        safe_realloc(<void**>&self.daa, n, sizeof(double))
        safe_realloc(<void**>&self.dab, n, sizeof(double))
        safe_realloc(<void**>&self.dbb, n, sizeof(double))
        safe_realloc(<void**>&self.adjoint_tangent, n, sizeof(double))
        safe_realloc(<void**>&self.tangent, n, sizeof(double))
        # Leaf rows: zero second partials; constants have zero tangent.
        memset(self.daa, 0, n * sizeof(double))
        memset(self.dab, 0, n * sizeof(double))
        memset(self.dbb, 0, n * sizeof(double))
        memset(self.tangent, 0, n * sizeof(double))
        return 0

    def __dealloc__(self):
        free(self.value); free(self.d0); free(self.d1); free(self.adjoint)
        free(self.tangent); free(self.daa); free(self.dab); free(self.dbb)
        free(self.adjoint_tangent)


cdef void reverse_sweep_points(const int32_t* arg0, const int32_t* arg1,
                               const double* d0, const double* d1, double* adjoint,
                               Py_ssize_t top, Py_ssize_t bottom,
                               Py_ssize_t points) noexcept nogil:
    """``reverse_sweep`` for ``points`` points at once (row-major, point-minor).

    Same rule: a product with an exact zero factor adds nothing, written as a
    select (``strong``) rather than a branch so the loop over points vectorises.
    """
    cdef Py_ssize_t i, k
    cdef double g, p, q
    cdef double* target0
    cdef double* target1
    memset(adjoint, 0, (top + 1) * points * sizeof(double))
    for k in range(points):
        adjoint[top * points + k] = 1.0
    for i in range(top, bottom - 1, -1):
        target0 = &adjoint[arg0[i] * points]
        target1 = &adjoint[arg1[i] * points]
        for k in range(points):
            g = adjoint[i * points + k]
            p = d0[i * points + k]
            q = d1[i * points + k]
            target0[k] += strong(p, g)
            target1[k] += strong(q, g)


cdef inline double strong(double factor, double other) noexcept nogil:
    """factor * other, where an exact zero factor wins even against inf or NaN
    (the rule of every sweep: a product with an exact zero factor adds nothing)."""
    return factor * other if (factor != 0.0 and other != 0.0) else 0.0


cdef inline void evaluate_rows(const uint8_t* ops, const int32_t* arg0, const int32_t* arg1,
                               Py_ssize_t first, Py_ssize_t rows, Py_ssize_t points,
                               double* value, double* d0, double* d1, double* daa, double* dab,
                               double* dbb) noexcept nogil:
    """The forward sweep of a replay: the value and partials (and second partials
    unless daa is NULL) of rows first .. rows - 1 (all computed: a replay keeps
    its leaves first) at ``points`` points, from the op table."""
    cdef Py_ssize_t i, a, b
    cdef int op
    for i in range(first, rows):
        op = ops[i]
        a = arg0[i] * points
        b = arg1[i] * points
        op_eval(op, points, &value[a], &value[b], &value[i * points],
                &d0[i * points], &d1[i * points],
                &daa[i * points] if daa != NULL else NULL,
                &dab[i * points] if daa != NULL else NULL,
                &dbb[i * points] if daa != NULL else NULL)


cdef void tangent_sweep_points(const int32_t* arg0, const int32_t* arg1,
                               Py_ssize_t first, Py_ssize_t rows,
                               const double* d0, const double* d1, double* tangent,
                               Py_ssize_t points) noexcept nogil:
    """Forward mode: tangent[i] = d0[i] * tangent[arg0[i]] + d1[i] * tangent[arg1[i]]
    for the computed rows first .. rows - 1.

    Leaf rows keep the tangents the caller set (inputs) or zero (constants).
    """
    cdef Py_ssize_t i, k, a, b
    for i in range(first, rows):
        a = arg0[i] * points
        b = arg1[i] * points
        for k in range(points):
            tangent[i * points + k] = (strong(d0[i * points + k], tangent[a + k])
                                       + strong(d1[i * points + k], tangent[b + k]))


cdef void second_order_sweep_points(const int32_t* arg0, const int32_t* arg1,
                                    const double* d0, const double* d1,
                                    const double* daa, const double* dab, const double* dbb,
                                    const double* tangent, double* adjoint,
                                    double* adjoint_tangent, Py_ssize_t top,
                                    Py_ssize_t bottom, Py_ssize_t points) noexcept nogil:
    """Forward-over-reverse: the reverse sweep of ``reverse_sweep_points`` carrying,
    beside each adjoint g, its directional derivative along the tangents:
    d(d0 * g) = d0 * g' + g * (daa * t[arg0] + dab * t[arg1]), likewise for arg1.
    At the inputs, adjoint_tangent is the Hessian times the direction."""
    cdef Py_ssize_t i, k, a, b, r
    cdef double g, gt, ta, tb
    memset(adjoint, 0, (top + 1) * points * sizeof(double))
    memset(adjoint_tangent, 0, (top + 1) * points * sizeof(double))
    for k in range(points):
        adjoint[top * points + k] = 1.0
    for i in range(top, bottom - 1, -1):
        a = arg0[i] * points
        b = arg1[i] * points
        for k in range(points):
            r = i * points + k
            g = adjoint[r]
            gt = adjoint_tangent[r]
            ta = tangent[a + k]
            tb = tangent[b + k]
            adjoint[a + k] += strong(d0[r], g)
            adjoint[b + k] += strong(d1[r], g)
            adjoint_tangent[a + k] += strong(d0[r], gt) + strong(
                g, strong(daa[r], ta) + strong(dab[r], tb))
            adjoint_tangent[b + k] += strong(d1[r], gt) + strong(
                g, strong(dab[r], ta) + strong(dbb[r], tb))


cdef inline bint finite_number(double x) noexcept nogil:
    """Neither inf nor NaN (x - x is NaN for both)."""
    return x - x == 0.0


cdef inline double product(double factor, double other, bint exact_zeros) noexcept nogil:
    """``strong(factor, other)`` if exact_zeros, else the plain product: the two
    differ only where one factor is zero and the other inf or NaN (and in the
    sign of a zero product, which sums that start at +0.0 absorb).  The Hessian's
    lane sweeps run plain first (no compare per lane) and again with exact zeros
    if an entry comes out inf or NaN: a NaN from inf * 0 reaches every entry it
    feeds."""
    return strong(factor, other) if exact_zeros else factor * other


cdef inline void tangent_sweep_lanes(const int32_t* arg0, const int32_t* arg1,
                                     Py_ssize_t first, Py_ssize_t rows,
                                     const double* d0, const double* d1, double* tangent,
                                     Py_ssize_t lanes, bint exact_zeros) noexcept nogil:
    """``tangent_sweep_points`` for many directions at ONE point: the partials
    (one per row) are shared by all lanes, only the tangents differ."""
    cdef Py_ssize_t i, k, a, b
    cdef double p, q
    for i in range(first, rows):
        a = arg0[i] * lanes
        b = arg1[i] * lanes
        p = d0[i]
        q = d1[i]
        if q == 0.0:        # unary ops, and constant second operands: one term
            for k in range(lanes):
                tangent[i * lanes + k] = product(p, tangent[a + k], exact_zeros)
        else:
            for k in range(lanes):
                tangent[i * lanes + k] = (product(p, tangent[a + k], exact_zeros)
                                          + product(q, tangent[b + k], exact_zeros))


cdef inline void second_order_sweep_lanes(const int32_t* arg0, const int32_t* arg1,
                                          const double* d0, const double* d1, const double* daa,
                                          const double* dab, const double* dbb,
                                          double* adjoint, bint first_order,
                                          const double* tangent, double* adjoint_tangent,
                                          Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t lanes,
                                          bint exact_zeros) noexcept nogil:
    """``second_order_sweep_points`` for many directions at ONE point: partials and
    the first-order adjoint are shared by all lanes.  With ``first_order`` the
    sweep also computes that adjoint as it goes (the sums of ``reverse_sweep``,
    in its order); otherwise it reads the one an earlier sweep left."""
    cdef Py_ssize_t i, k, a, b, r
    cdef double g, p, q, paa, pab, pbb, gt, ta, tb
    memset(adjoint_tangent, 0, (top + 1) * lanes * sizeof(double))
    if first_order:
        memset(adjoint, 0, (top + 1) * sizeof(double))
        adjoint[top] = 1.0
    for i in range(top, bottom - 1, -1):
        a = arg0[i] * lanes
        b = arg1[i] * lanes
        g = adjoint[i]
        p = d0[i]
        q = d1[i]
        if first_order and g != 0.0:           # rows above i are done: g is final
            if p != 0.0:
                adjoint[arg0[i]] += p * g
            if q != 0.0:
                adjoint[arg1[i]] += q * g
        paa = daa[i]
        pab = dab[i]
        pbb = dbb[i]
        if g == 0.0 or (paa == 0.0 and pab == 0.0 and pbb == 0.0):
            # No second-order term (linear op, or off the path to the output): the
            # adjoint tangents flow back like adjoints, and a zero partial adds nothing.
            if p != 0.0:
                for k in range(lanes):
                    adjoint_tangent[a + k] += product(p, adjoint_tangent[i * lanes + k],
                                                      exact_zeros)
            if q != 0.0:
                for k in range(lanes):
                    adjoint_tangent[b + k] += product(q, adjoint_tangent[i * lanes + k],
                                                      exact_zeros)
            continue
        if paa == 0.0 and pbb == 0.0:
            # Only the cross term (a product): half the work of the general case.
            for k in range(lanes):
                gt = adjoint_tangent[i * lanes + k]
                ta = tangent[a + k]
                tb = tangent[b + k]
                adjoint_tangent[a + k] += (product(p, gt, exact_zeros) + product(
                    g, product(pab, tb, exact_zeros), exact_zeros))
                adjoint_tangent[b + k] += (product(q, gt, exact_zeros) + product(
                    g, product(pab, ta, exact_zeros), exact_zeros))
            continue
        if q == 0.0 and pab == 0.0 and pbb == 0.0:
            # A unary op: nothing flows to the second operand.
            for k in range(lanes):
                gt = adjoint_tangent[i * lanes + k]
                adjoint_tangent[a + k] += (product(p, gt, exact_zeros) + product(
                    g, product(paa, tangent[a + k], exact_zeros), exact_zeros))
            continue
        for k in range(lanes):
            r = i * lanes + k
            gt = adjoint_tangent[r]
            ta = tangent[a + k]
            tb = tangent[b + k]
            adjoint_tangent[a + k] += product(p, gt, exact_zeros) + product(
                g, product(paa, ta, exact_zeros) + product(pab, tb, exact_zeros), exact_zeros)
            adjoint_tangent[b + k] += product(q, gt, exact_zeros) + product(
                g, product(pab, ta, exact_zeros) + product(pbb, tb, exact_zeros), exact_zeros)


cdef inline void hessian_lane_sweeps(Replay replay, Workspace one, Workspace work,
                                     Py_ssize_t lanes, bint first_order,
                                     bint exact_zeros) noexcept nogil:
    """One block of Hessian lanes (seeded in work.tangent at the inputs): the tangent
    and second-order sweeps over the partials of ``one``, whose adjoint the first
    block computes (``first_order``) and the others reuse."""
    tangent_sweep_lanes(replay.tape.arg0, replay.tape.arg1, replay.first_computed,
                        replay.tape.n_rows, one.d0, one.d1, work.tangent, lanes, exact_zeros)
    second_order_sweep_lanes(replay.tape.arg0, replay.tape.arg1, one.d0, one.d1, one.daa,
                             one.dab, one.dbb, one.adjoint, first_order, work.tangent,
                             work.adjoint_tangent, replay.outputs[0], replay.first_computed,
                             lanes, exact_zeros)


cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static __inline int wengert_ctz64(unsigned __int64 bits) {
        unsigned long index; _BitScanForward64(&index, bits); return (int)index;
    }
    #else
    #define wengert_ctz64(bits) __builtin_ctzll(bits)
    #endif
    """
    int ctz64 "wengert_ctz64" (uint64_t bits) noexcept nogil   # index of the lowest set bit


cdef enum:
    STRUCTURE_MAX_WORDS = 1 << 23      # dependency bitsets of a Hessian analysis: 64 MiB at most
    STRUCTURE_MAX_COST = 100000000     # steps (words written, colouring) before giving up


cdef Py_ssize_t add_pairs(uint64_t* pattern, const uint64_t* rows, const uint64_t* columns,
                          Py_ssize_t words) noexcept nogil:
    """pattern[j] |= columns for every input j in the set rows (bitsets of ``words``
    words); returns the number of words written, the work done."""
    cdef Py_ssize_t w, v, j, work = 0
    cdef uint64_t bits
    for w in range(words):
        bits = rows[w]
        while bits:
            j = w * 64 + ctz64(bits)
            bits &= bits - 1
            for v in range(words):
                pattern[j * words + v] |= columns[v]
            work += words
    return work


cdef inline int popcount64(uint64_t bits) noexcept nogil:
    """Set bits (SWAR: without -mpopcnt, __builtin_popcountll is a library call)."""
    if bits == 0:                      # the common case in sparse bitsets
        return 0
    bits = bits - ((bits >> 1) & 0x5555555555555555ULL)
    bits = (bits & 0x3333333333333333ULL) + ((bits >> 2) & 0x3333333333333333ULL)
    bits = (bits + (bits >> 4)) & 0x0F0F0F0F0F0F0F0FULL
    return <int>((bits * 0x0101010101010101ULL) >> 56)


cdef inline Py_ssize_t count_bits(const uint64_t* bits, Py_ssize_t words) noexcept nogil:
    cdef Py_ssize_t w, k = 0
    for w in range(words):
        k += popcount64(bits[w])
    return k


cdef enum:
    PLAN_MAX_INSTRUCTIONS = 1 << 22    # slots, moves and products of a HessianPlan: 48 MiB at most


@cython.final
cdef class HessianPlan:
    """A sparse Hessian as straight-line code over one point's partials.

    With H = sum over rows i of adjoint[i] * (daa[i] Ga Ga' + dab[i] (Ga Gb' + Gb Ga')
    + dbb[i] Gb Gb'), where Ga and Gb are the gradients of row i's operands
    with respect to the inputs, the Hessian needs those gradients only where the
    op has second partials, and each is sparse: nonzero only on the inputs the
    row depends on (the dependency bitsets of ``Replay.hessian_structure``).
    Where those sets are small (Rosenbrock: at most 2 inputs per row), moving
    each nonzero once costs less than carrying n_colors lanes through every
    row; ``hessian_plan`` builds a plan only where it does.

    The plan is three programs of int32 indices, fixed by the op codes:

    * gradients: every row whose gradient is needed owns one slot per input it
      depends on, in input order.  ``ones`` lists the slots of input rows (1.0).
      For computed row ``gradient_row[m]``, the moves from the previous end up
      to ``gradient_end[2m]`` add ``d0[row] * slots[source]`` to
      ``slots[target]`` (from its first operand's gradient), and those up to
      ``gradient_end[2m + 1]`` do the same with ``d1`` (its second's).
    * products: for curved row ``curved_row[m]``, products up to
      ``curved_end[3m]`` add ``adjoint * daa * slots[left] * slots[right]`` to
      entry ``entry`` of the CSR values, then ``dab`` up to ``curved_end[3m + 1]``
      and ``dbb`` up to ``curved_end[3m + 2]``.  Only entries on or above the
      diagonal are written (a cross term on the diagonal appears twice), so the
      caller mirrors them and H is exactly symmetric.

    Rows run in recorded order, so a gradient is complete before it is read.
    """

    def __dealloc__(self):
        free(self.ones); free(self.gradient_row); free(self.gradient_end)
        free(self.target); free(self.source); free(self.curved_row); free(self.curved_end)
        free(self.entry); free(self.left); free(self.right)

    @property
    def size(self):
        """(slots, moves, products): the plan's work per Hessian."""
        return (self.n_slots, self.n_moves, self.n_products)

    def arrays(self):
        """Copies of the plan's index arrays, by field name (for inspection and tests)."""
        return dict(ones=_int32_copy(self.ones, self.n_ones),
                    gradient_row=_int32_copy(self.gradient_row, self.n_gradient_rows),
                    gradient_end=_int32_copy(self.gradient_end, 2 * self.n_gradient_rows),
                    target=_int32_copy(self.target, self.n_moves),
                    source=_int32_copy(self.source, self.n_moves),
                    curved_row=_int32_copy(self.curved_row, self.n_curved_rows),
                    curved_end=_int32_copy(self.curved_end, 3 * self.n_curved_rows),
                    entry=_int32_copy(self.entry, self.n_products),
                    left=_int32_copy(self.left, self.n_products),
                    right=_int32_copy(self.right, self.n_products))

    cdef void run(self, const double* d0, const double* d1, const double* daa,
                  const double* dab, const double* dbb, const double* adjoint,
                  double* slots, double* values) noexcept nogil:
        """Add to the entries on and above the diagonal of ``values`` (zeroed by the
        caller) the Hessian at one point, from its partials and adjoints;
        ``slots`` is scratch of ``n_slots``.  A curved row whose adjoint or second
        partial is zero adds nothing, as in the lane sweeps."""
        # Local pointers: extensions build with -fno-strict-aliasing, so each store
        # to slots would otherwise reload the fields through self.
        cdef const int32_t* target = self.target
        cdef const int32_t* source = self.source
        cdef const int32_t* ends = self.gradient_end
        cdef const int32_t* rows = self.gradient_row
        cdef Py_ssize_t m, e = 0, end, row
        cdef double p, g
        memset(slots, 0, self.n_slots * sizeof(double))
        for m in range(self.n_ones):
            slots[self.ones[m]] = 1.0
        for m in range(self.n_gradient_rows):
            row = rows[m]
            p = d0[row]
            end = ends[2 * m]
            while e < end:
                slots[target[e]] += p * slots[source[e]]
                e += 1
            p = d1[row]
            end = ends[2 * m + 1]
            while e < end:
                slots[target[e]] += p * slots[source[e]]
                e += 1
        ends = self.curved_end
        rows = self.curved_row
        e = 0
        for m in range(self.n_curved_rows):
            row = rows[m]
            g = adjoint[row]
            e = add_products(e, ends[3 * m], g, daa[row], self.entry, self.left, self.right,
                             slots, values)
            e = add_products(e, ends[3 * m + 1], g, dab[row], self.entry, self.left,
                             self.right, slots, values)
            e = add_products(e, ends[3 * m + 2], g, dbb[row], self.entry, self.left,
                             self.right, slots, values)


cdef inline Py_ssize_t add_products(Py_ssize_t e, Py_ssize_t end, double g, double partial,
                                    const int32_t* entry, const int32_t* left,
                                    const int32_t* right, const double* slots,
                                    double* values) noexcept nogil:
    """A plan's products e .. end - 1, of one second partial of a row with adjoint g;
    returns end."""
    cdef double h
    if g == 0.0 or partial == 0.0:     # nothing, as in the lane sweeps (not 0 * inf)
        return end
    h = g * partial
    while e < end:
        values[entry[e]] += h * slots[left[e]] * slots[right[e]]
        e += 1
    return e


cdef object _int32_copy(const int32_t* data, Py_ssize_t length):
    array = np.empty(length, dtype=np.int32)
    cdef int32_t[::1] view = array
    if length:
        memcpy(&view[0], data, length * sizeof(int32_t))
    return array


cdef Py_ssize_t gradient_moves(const uint64_t* to, const uint64_t* of, Py_ssize_t words,
                               Py_ssize_t to_first, Py_ssize_t of_first,
                               int32_t* target, int32_t* source, Py_ssize_t e) noexcept nogil:
    """Moves from the slots of gradient ``of`` (inputs ``of``, first slot of_first) to
    those of the same inputs in gradient ``to`` (a superset, first slot to_first),
    written from move e on; returns the next free move."""
    cdef Py_ssize_t w, base = to_first, k = of_first
    cdef uint64_t bits
    cdef int bit
    for w in range(words):
        bits = of[w]
        while bits:
            bit = ctz64(bits)
            target[e] = <int32_t>(base + popcount64(to[w] & ((<uint64_t>1 << bit) - 1)))
            source[e] = <int32_t>k
            k += 1
            e += 1
            bits &= bits - 1
        base += popcount64(to[w])
    return e


cdef Py_ssize_t list_inputs(const uint64_t* bits, Py_ssize_t words, int32_t* inputs) noexcept nogil:
    """The inputs in a bitset, ascending; returns how many."""
    cdef Py_ssize_t w, k = 0
    cdef uint64_t word
    for w in range(words):
        word = bits[w]
        while word:
            inputs[k] = <int32_t>(w * 64 + ctz64(word))
            k += 1
            word &= word - 1
    return k


cdef inline int32_t entry_of(const Py_ssize_t[::1] indptr, const int32_t[::1] indices,
                             Py_ssize_t i, Py_ssize_t j) noexcept nogil:
    """Position of entry (i, j) in a CSR pattern with ascending columns (it is there)."""
    cdef Py_ssize_t low = indptr[i], high = indptr[i + 1], middle
    while low < high:
        middle = (low + high) // 2
        if indices[middle] < j:
            low = middle + 1
        else:
            high = middle
    return <int32_t>low


cdef Py_ssize_t products(const int32_t* a_inputs, Py_ssize_t a_count, Py_ssize_t a_first,
                         const int32_t* b_inputs, Py_ssize_t b_count, Py_ssize_t b_first,
                         bint same, const Py_ssize_t[::1] indptr, const int32_t[::1] indices,
                         int32_t* entry, int32_t* left, int32_t* right, Py_ssize_t e) noexcept:
    """The products of the term Ga Gb' + Gb Ga' (``same``: Ga Ga') that land on or
    above the diagonal, written from product e on (NULL arrays: only counted);
    returns the next free product.  Ga Ga' takes each pair of inputs once; the
    cross term takes every pair, twice on the diagonal."""
    cdef Py_ssize_t s, t, i, j, copies
    for s in range(a_count):
        for t in range(s if same else 0, b_count):
            i = a_inputs[s]
            j = b_inputs[t]
            copies = 2 if i == j and not same else 1
            while copies:
                if entry != NULL:
                    entry[e] = entry_of(indptr, indices, min(i, j), max(i, j))
                    left[e] = <int32_t>(a_first + s)
                    right[e] = <int32_t>(b_first + t)
                e += 1
                copies -= 1
    return e


cdef enum:
    LIVE = 1           # hessian_plan's marks: the output depends on the row
    NEEDED = 2         # its gradient is needed (an operand of a curved or a NEEDED row)
    HAS_SLOTS = 4      # NEEDED and depends on some input


cdef Py_ssize_t curved_products(Py_ssize_t i, const uint8_t* ops, const int32_t* arg0,
                                const int32_t* arg1, const uint8_t* marks, const uint64_t* dep,
                                Py_ssize_t words, const Py_ssize_t[::1] indptr,
                                const int32_t[::1] indices, int32_t* a_inputs, int32_t* b_inputs,
                                const Py_ssize_t* first_slot, int32_t* entry, int32_t* left,
                                int32_t* right, Py_ssize_t e, int32_t* ends) noexcept:
    """Row i's products (none unless it is LIVE and curved), written from product e
    on with their three ends (NULL arrays: only counted); returns how many."""
    cdef Py_ssize_t a, b, n_a, n_b, first_a = 0, first_b = 0, start = e
    cdef int curvature
    if not marks[i] & LIVE or op_arity(ops[i]) == 0:
        return 0
    curvature = op_curvature(ops[i])
    if curvature == 0:
        return 0
    a = arg0[i]
    b = arg1[i]
    n_a = list_inputs(&dep[a * words], words, a_inputs)
    n_b = list_inputs(&dep[b * words], words, b_inputs)
    if marks[a] & HAS_SLOTS:
        first_a = first_slot[a]
    if marks[b] & HAS_SLOTS:
        first_b = first_slot[b]
    if curvature & CURVES_AA:
        e = products(a_inputs, n_a, first_a, a_inputs, n_a, first_a, True, indptr, indices,
                     entry, left, right, e)
    if ends != NULL:
        ends[0] = <int32_t>e
    if curvature & CURVES_AB:
        e = products(a_inputs, n_a, first_a, b_inputs, n_b, first_b, False, indptr, indices,
                     entry, left, right, e)
    if ends != NULL:
        ends[1] = <int32_t>e
    if curvature & CURVES_BB:
        e = products(b_inputs, n_b, first_b, b_inputs, n_b, first_b, True, indptr, indices,
                     entry, left, right, e)
    if ends != NULL:
        ends[2] = <int32_t>e
    return e - start


cdef HessianPlan hessian_plan(Replay replay, const uint64_t* dep, const Py_ssize_t* live,
                              Py_ssize_t words, const Py_ssize_t[::1] indptr,
                              const int32_t[::1] indices, Py_ssize_t n_colors):
    """The HessianPlan of output 0, from the analysis's dependency bitsets, live
    marks (``Replay._dependencies``) and pattern; None where the lane sweeps
    cost less (n_colors lanes, three lane operations per row, against one per
    move, two per product and two per row for the reverse sweep the plan needs;
    about 1 ns each, measured on Rosenbrock) or the plan would be too large."""
    cdef Py_ssize_t n = replay.inputs.shape[0], top = replay.outputs[0]
    cdef Py_ssize_t first = replay.first_computed, i, a, b, m, e, count
    cdef Py_ssize_t n_slots = 0, n_ones = 0, n_rows = 0, n_curved = 0, n_moves = 0
    cdef Py_ssize_t n_products = 0, plan_cost, lane_cost
    cdef int curvature
    cdef bint a_varies, b_varies
    cdef const uint8_t* ops = replay.tape.op
    cdef const int32_t* arg0 = replay.tape.arg0
    cdef const int32_t* arg1 = replay.tape.arg1
    cdef HessianPlan plan
    if indptr[n] > INT32_MAX or top < first:    # (an output that is a leaf: no Hessian)
        return None
    cdef uint8_t* marks = <uint8_t*>calloc(top + 1, sizeof(uint8_t))
    cdef Py_ssize_t* first_slot = <Py_ssize_t*>malloc((top + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* inputs_of = <Py_ssize_t*>malloc((top + 1) * sizeof(Py_ssize_t))
    cdef int32_t* a_inputs = <int32_t*>malloc((n + 1) * sizeof(int32_t))
    cdef int32_t* b_inputs = <int32_t*>malloc((n + 1) * sizeof(int32_t))
    try:
        if (marks == NULL or first_slot == NULL or inputs_of == NULL or a_inputs == NULL
                or b_inputs == NULL):
            raise MemoryError("no memory for the Hessian plan")
        for i in range(top + 1):               # how many inputs each row depends on
            inputs_of[i] = count_bits(&dep[i * words], words)
        for i in range(top, 0, -1):
            if not live[i] or op_arity(ops[i]) == 0:
                continue
            marks[i] |= LIVE
            a = arg0[i]
            b = arg1[i]
            # A term of the Hessian needs the gradients in it, unless one of them is
            # zero (100 * y: no cross term, y's gradient is not needed for it).
            curvature = op_curvature(ops[i])
            a_varies = inputs_of[a] > 0
            b_varies = inputs_of[b] > 0
            if marks[i] & NEEDED or curvature & CURVES_AA or (curvature & CURVES_AB and b_varies):
                marks[a] |= NEEDED
            if marks[i] & NEEDED or curvature & CURVES_BB or (curvature & CURVES_AB and a_varies):
                marks[b] |= NEEDED
        for i in range(1, top + 1):            # slots, in row order, and the moves
            count = inputs_of[i]
            if not marks[i] & NEEDED or count == 0:
                continue
            marks[i] |= HAS_SLOTS
            first_slot[i] = n_slots
            n_slots += count
            if op_arity(ops[i]) == 0:          # an INPUT (a CONST depends on none)
                n_ones += 1
            else:
                n_rows += 1
                n_moves += inputs_of[arg0[i]] + inputs_of[arg1[i]]
        for i in range(first, top + 1):        # the products
            count = curved_products(i, ops, arg0, arg1, marks, dep, words, indptr, indices,
                                    a_inputs, b_inputs, first_slot, NULL, NULL, NULL, 0, NULL)
            if count:
                n_curved += 1
                n_products += count
        plan_cost = n_moves + 2 * n_products + n_rows + n_curved + 2 * (top + 1 - first)
        lane_cost = 3 * n_colors * (top + 1 - first)
        if plan_cost >= lane_cost or n_slots + n_moves + n_products > PLAN_MAX_INSTRUCTIONS:
            return None
        plan = HessianPlan()
        plan.n_slots = n_slots
        plan.n_ones = n_ones
        plan.n_gradient_rows = n_rows
        plan.n_curved_rows = n_curved
        plan.n_moves = n_moves
        plan.n_products = n_products
        plan.ones = <int32_t*>malloc(max(n_ones, 1) * sizeof(int32_t))
        plan.gradient_row = <int32_t*>malloc(max(n_rows, 1) * sizeof(int32_t))
        plan.gradient_end = <int32_t*>malloc(max(2 * n_rows, 1) * sizeof(int32_t))
        plan.target = <int32_t*>malloc(max(n_moves, 1) * sizeof(int32_t))
        plan.source = <int32_t*>malloc(max(n_moves, 1) * sizeof(int32_t))
        plan.curved_row = <int32_t*>malloc(max(n_curved, 1) * sizeof(int32_t))
        plan.curved_end = <int32_t*>malloc(3 * (n_curved + 1) * sizeof(int32_t))  # + 1: see below
        plan.entry = <int32_t*>malloc(max(n_products, 1) * sizeof(int32_t))
        plan.left = <int32_t*>malloc(max(n_products, 1) * sizeof(int32_t))
        plan.right = <int32_t*>malloc(max(n_products, 1) * sizeof(int32_t))
        if (plan.ones == NULL or plan.gradient_row == NULL or plan.gradient_end == NULL
                or plan.target == NULL or plan.source == NULL or plan.curved_row == NULL
                or plan.curved_end == NULL or plan.entry == NULL or plan.left == NULL
                or plan.right == NULL):
            raise MemoryError("no memory for the Hessian plan")
        m = 0
        for i in range(1, min(first, top + 1)):    # the inputs, among the leaves
            if marks[i] & HAS_SLOTS:
                plan.ones[m] = <int32_t>first_slot[i]
                m += 1
        m = e = 0
        for i in range(first, top + 1):
            if not marks[i] & HAS_SLOTS:
                continue
            plan.gradient_row[m] = <int32_t>i
            for b in range(2):
                a = arg1[i] if b else arg0[i]
                if marks[a] & HAS_SLOTS:
                    e = gradient_moves(&dep[i * words], &dep[a * words], words, first_slot[i],
                                       first_slot[a], plan.target, plan.source, e)
                plan.gradient_end[2 * m + b] = <int32_t>e
            m += 1
        m = e = 0
        for i in range(first, top + 1):        # (a curved row without products writes its
            count = curved_products(i, ops, arg0, arg1, marks, dep, words, indptr, indices,
                                    a_inputs, b_inputs, first_slot, plan.entry, plan.left,
                                    plan.right, e, &plan.curved_end[3 * m])
            if count:                          # ends, then the next row overwrites them)
                plan.curved_row[m] = <int32_t>i
                m += 1
                e += count
        return plan
    finally:
        free(marks)
        free(first_slot)
        free(inputs_of)
        free(a_inputs)
        free(b_inputs)


@cython.final
cdef class Replay:
    """A recorded tape that can be evaluated at new inputs (see ``wengert.record``).

    Built from plain arrays, which are validated here: every op code, every
    operand index (an earlier row), every input, output and guard.  The
    sweeps then run on raw pointers without checks and without the GIL.
    """

    def __cinit__(self, *source):
        # Replay(tape, inputs, outputs, guards): a fresh recording, whose rows are
        # valid by construction (push only ever points at earlier rows): taken over
        # as they are (the tape is frozen).  Replay(op, arg0, arg1, value, inputs, outputs,
        # guard_kind, guard_a, guard_b, guard_expected): arrays from anywhere (a file, a pickle),
        # every one validated.  Either way, inputs, outputs and guards are checked,
        # and __cinit__ runs once per object, so a replay's arrays never change
        # while another thread sweeps them.
        self._pool = []
        if len(source) == 4 and type(source[0]) is Tape:
            self.tape = <Tape>source[0]
            if self.tape.sweeping:
                raise RuntimeError("a backward pass is running on this tape")
            # Take the tape over: with its capacity set to its length, any push
            # reaches _grow, which refuses (frozen), so no row ever changes.
            self.tape.frozen = True
            self.tape.capacity = self.tape.n_rows
            self._set_ends(source[1], source[2])
            if source[3]:
                kind, a, b, expected = zip(*source[3])
                self.guard_kind = np.array(kind, dtype=np.uint8)
                self.guard_a = np.array(a, dtype=np.int32)
                self.guard_b = np.array(b, dtype=np.int32)
                self.guard_expected = np.array(expected, dtype=np.float64)
            else:     # empty, so sharing them is safe (typed: no buffer to acquire)
                self.guard_kind = NO_GUARD_KIND_VIEW
                self.guard_a = NO_GUARD_ROW_VIEW
                self.guard_b = NO_GUARD_ROW_VIEW
                self.guard_expected = NO_GUARD_VALUE_VIEW
        elif len(source) == len(REPLAY_ARRAYS):
            self._rebuild(*_validated_replay_arrays(*source))
        else:
            raise TypeError("Replay(tape, inputs, outputs, guards) or Replay(op, arg0, arg1, "
                            "value, inputs, outputs, guard_kind, guard_a, guard_b, "
                            "guard_expected)")
        self._check_ends()
        self._leaves_first()

    cdef int _set_ends(self, object inputs, object outputs) except -1:
        """The input and output rows of a fresh recording (a range of rows and a
        list), as slices of one new int32 array: one allocation, no buffer
        acquired per array (wengert.record's fixed cost is a few microseconds)."""
        cdef Py_ssize_t n = len(inputs), m = len(outputs), i, first
        cdef int32_t[::1] ends = np.empty(n + m, dtype=np.int32)
        if type(inputs) is range and inputs.step == 1 and 0 <= inputs.start \
                and inputs.stop <= INT32_MAX:
            first = inputs.start
            for i in range(n):
                ends[i] = <int32_t>(first + i)
        else:
            for i in range(n):
                ends[i] = inputs[i]
        for i in range(m):
            ends[n + i] = outputs[i]
        self.inputs = ends[:n]
        self.outputs = ends[n:]
        return 0

    cdef int _leaves_first(self) except -1:
        """Reorder the rows so that all leaves (constants and inputs, 35-40% of a
        typical tape) come first, in their order, then the computed rows in
        theirs: still a topological order, and the sweeps run over the
        contiguous range of computed rows, never looking at an op code to skip
        a leaf.  Inputs, outputs and guards follow their rows."""
        cdef Tape old = self.tape, tape
        cdef Py_ssize_t rows = old.n_rows, i, j, leaves = 0
        # where[i]: the new index of row i
        cdef int32_t* where = <int32_t*>malloc(rows * sizeof(int32_t))
        if where == NULL:
            raise MemoryError()
        try:
            for i in range(rows):
                if op_arity(old.op[i]) == 0:
                    where[i] = <int32_t>leaves
                    leaves += 1
            self.first_computed = leaves
            j = leaves
            for i in range(rows):
                if op_arity(old.op[i]) != 0:
                    where[i] = <int32_t>j
                    j += 1
            tape = Tape(capacity=rows)
            _renumber_rows(old.op, old.arg0, old.arg1, old.d0, old.d1, old.value, where, rows,
                           tape.op, tape.arg0, tape.arg1, tape.d0, tape.d1, tape.value)
            tape.n_rows = rows
            tape.frozen = True                       # taken over: see __cinit__
            tape.capacity = rows
            self.tape = tape
            # The row arrays are this replay's own copies: renumbered in place.
            _renumber_in_place(self.inputs, where)
            _renumber_in_place(self.outputs, where)
            _renumber_in_place(self.guard_a, where)
            _renumber_in_place(self.guard_b, where)
        finally:
            free(where)
        return 0

    def _rebuild(self, op, arg0, arg1, value, inputs, outputs,
                 guard_kind, guard_a, guard_b, guard_expected):
        """Rebuild the rows from validated arrays; values and partials of computed
        rows are recomputed, so a file's value column matters only for leaves."""
        cdef Py_ssize_t rows = op.shape[0], i
        cdef Tape tape = Tape(capacity=rows)
        cdef const uint8_t[::1] op_view = op
        cdef const int32_t[::1] arg0_view = arg0, arg1_view = arg1
        cdef const double[::1] value_view = value
        if self.tape is not None:
            raise RuntimeError("a Replay is built once")
        tape.n_rows = 1
        for i in range(1, rows):
            if op_arity(op_view[i]) == 0:
                tape.push_leaf(op_view[i], value_view[i])
            else:
                tape.push(op_view[i], arg0_view[i], arg1_view[i])
        self.tape = tape
        # Copies: the caller's arrays may change later, this replay's never do.
        self.inputs = np.array(inputs)
        self.outputs = np.array(outputs)
        self.guard_kind = np.array(guard_kind)
        self.guard_a = np.array(guard_a)
        self.guard_b = np.array(guard_b)
        self.guard_expected = np.array(guard_expected)

    cdef int _check_ends(self) except -1:
        """Inputs: distinct INPUT rows, at least one; outputs: rows; guards: known
        kinds on rows.  C loops, so a fresh recording pays microseconds."""
        cdef Py_ssize_t rows = self.tape.n_rows, i, r
        cdef bytearray seen = bytearray(rows)
        cdef unsigned char* mark = seen
        if self.inputs.shape[0] < 1:
            raise ValueError("a replay needs at least one input")
        for i in range(self.inputs.shape[0]):
            r = self.inputs[i]
            if r < 1 or r >= rows or self.tape.op[r] != INPUT:
                raise ValueError("every input must be the row of an INPUT op")
            if mark[r]:
                raise ValueError("inputs must not repeat a row")
            mark[r] = 1
        if self.outputs.shape[0] < 1:
            raise ValueError("outputs must be one or more rows of the tape (not the sentinel)")
        for i in range(self.outputs.shape[0]):
            if self.outputs[i] < 1 or self.outputs[i] >= rows:
                raise ValueError("outputs must be one or more rows of the tape (not the sentinel)")
        for i in range(self.guard_kind.shape[0]):
            if self.guard_kind[i] >= N_GUARD_KINDS:
                raise ValueError("unknown guard kind")
            if not (0 <= self.guard_a[i] < rows and 0 <= self.guard_b[i] < rows):
                raise ValueError("guard_a and guard_b must be rows of the tape")
        return 0

    @property
    def n_rows(self):
        return self.tape.n_rows - 1

    def tape_copy(self):
        """A copy of the replayed tape, for inspection."""
        return self.tape.copy()

    @property
    def n_inputs(self):
        return self.inputs.shape[0]

    @property
    def n_outputs(self):
        return self.outputs.shape[0]

    @property
    def n_guards(self):
        return self.guard_kind.shape[0]

    def arrays(self):
        """The arrays that define this replay (copies), as accepted by the constructor."""
        rows = self.tape.to_arrays()
        return {"op": rows["op"], "arg0": rows["arg0"], "arg1": rows["arg1"],
                "value": rows["value"], "inputs": np.array(self.inputs),
                "outputs": np.array(self.outputs), "guard_kind": np.array(self.guard_kind),
                "guard_a": np.array(self.guard_a), "guard_b": np.array(self.guard_b),
                "guard_expected": np.array(self.guard_expected)}

    def describe_guard(self, Py_ssize_t g):
        """A readable description of guard ``g``."""
        if not 0 <= g < self.guard_kind.shape[0]:
            raise IndexError(f"guard {g} does not exist; this replay has "
                             f"{self.guard_kind.shape[0]} guards")
        kind, a, b = self.guard_kind[g], self.guard_a[g], self.guard_b[g]
        expected = self.guard_expected[g]
        if kind <= GUARD_GE:
            return (f"guard {g}: (row {a} {GUARD_NAMES[kind]} row {b}) was "
                    f"{bool(expected)} when recorded")
        return f"guard {g}: {GUARD_NAMES[kind]}(row {a}) was {expected!r} when recorded"

    def first_failed_guard(self, x):
        """Index of the first guard that fails at the single point x, or -1."""
        cdef const double[::1] point = np.ascontiguousarray(x, dtype=np.float64)
        cdef Workspace work
        cdef uint8_t ok
        cdef Py_ssize_t g, failed = -1
        if point.shape[0] != self.inputs.shape[0] or point.shape[0] == 0:
            raise ValueError(f"x must have {self.inputs.shape[0]} inputs, got {point.shape[0]}")
        work = self._take(1)
        self._forward(work, &point[0], 0, 1, &ok, False)
        for g in range(self.guard_kind.shape[0]):
            if not guard_holds(self.guard_kind[g], work.value[self.guard_a[g]],
                               work.value[self.guard_b[g]], self.guard_expected[g]):
                failed = g
                break
        self._give_back(work)
        return failed

    cdef Workspace _take(self, Py_ssize_t points):
        cdef Workspace work
        cdef Py_ssize_t k
        for k in range(len(self._pool)):
            work = <Workspace>self._pool[k]
            if work.points == points and work.rows == self.tape.n_rows:
                del self._pool[k]
                return work
        return Workspace(self, points)

    cdef void _give_back(self, Workspace work):
        if len(self._pool) < 16:
            self._pool.append(work)

    cdef void _forward(self, Workspace work, const double* x, Py_ssize_t stride,
                       Py_ssize_t count, uint8_t* ok, bint second) noexcept nogil:
        """Set the inputs of ``count`` points (point k's inputs at x + k * stride),
        recompute every row (with second partials if ``second``), and set ok[k]
        to whether point k's guards hold."""
        cdef Py_ssize_t K = work.points, n = self.inputs.shape[0], j, k, row, a, b
        cdef Py_ssize_t rows = self.tape.n_rows, first = self.first_computed
        cdef const uint8_t* ops = self.tape.op
        cdef const int32_t* arg0 = self.tape.arg0
        cdef const int32_t* arg1 = self.tape.arg1
        cdef double* value = work.value
        for j in range(n):
            row = self.inputs[j]
            for k in range(count):
                value[row * K + k] = x[k * stride + j]
        # Literals (1 point, no second partials) let the compiler specialise the
        # inlined op table: the single-point gradient's copy has no K loop and no
        # second-partial code (10% faster than testing daa at every row).
        if K == 1 and not second:
            evaluate_rows(ops, arg0, arg1, first, rows, 1, value, work.d0, work.d1,
                          NULL, NULL, NULL)
        elif K == 1:
            evaluate_rows(ops, arg0, arg1, first, rows, 1, value, work.d0, work.d1,
                          work.daa, work.dab, work.dbb)
        else:
            evaluate_rows(ops, arg0, arg1, first, rows, K, value, work.d0, work.d1,
                          work.daa if second else NULL, work.dab, work.dbb)
        for k in range(count):
            ok[k] = 1
        for j in range(self.guard_kind.shape[0]):
            a = self.guard_a[j] * K
            b = self.guard_b[j] * K
            for k in range(count):
                if not guard_holds(self.guard_kind[j], value[a + k], value[b + k],
                                   self.guard_expected[j]):
                    ok[k] = 0

    cdef void _tangent(self, Workspace work, const double* v, Py_ssize_t stride,
                       Py_ssize_t count) noexcept nogil:
        """Tangents of every row along the directions v (point k's at v + k * stride)."""
        cdef Py_ssize_t K = work.points, j, k, row
        for j in range(self.inputs.shape[0]):
            row = self.inputs[j]
            for k in range(count):
                work.tangent[row * K + k] = v[k * stride + j]
        tangent_sweep_points(self.tape.arg0, self.tape.arg1, self.first_computed,
                             self.tape.n_rows, work.d0, work.d1, work.tangent, K)

    cdef void _reverse(self, Workspace work, Py_ssize_t output) noexcept nogil:
        cdef Py_ssize_t top = self.outputs[output]
        if work.points == 1:
            reverse_sweep(self.tape.arg0, self.tape.arg1, work.d0, work.d1, work.adjoint,
                          top, 1.0, self.first_computed)
        else:
            reverse_sweep_points(self.tape.arg0, self.tape.arg1, work.d0, work.d1,
                                 work.adjoint, top, self.first_computed, work.points)

    def run(self, const double[:, ::1] x, const double[:, ::1] v, double[:, ::1] values,
            double[:, :, ::1] jacobian, double[:, ::1] tangents, double[:, ::1] hvp,
            uint8_t[::1] ok):
        """Replay at the points x (k, n_inputs); every output but ``values`` may be None.

        Writes values (k, n_outputs); the Jacobian (k, n_outputs, n_inputs) by
        reverse sweeps; the tangents (k, n_outputs) along the directions v
        (k, n_inputs) by a forward sweep; the Hessian of output 0 times v
        (k, n_inputs) by forward-over-reverse; and ok (k,): whether each
        point's guards held.  Returns how many points failed.
        """
        cdef Py_ssize_t points = x.shape[0], n = self.inputs.shape[0]
        cdef Py_ssize_t m = self.outputs.shape[0], chunk, start, count, i, j, k, row, top
        cdef Py_ssize_t failed = 0, row_bytes = 32
        cdef bint want_jacobian = jacobian is not None, want_tangents = tangents is not None
        cdef bint want_hvp = hvp is not None
        cdef Workspace work
        if x.shape[1] != n or values.shape[0] != points or values.shape[1] != m \
                or ok.shape[0] != points:
            raise ValueError("replay arrays have inconsistent shapes")
        if want_jacobian and (jacobian.shape[0] != points or jacobian.shape[1] != m
                              or jacobian.shape[2] != n):
            raise ValueError("replay Jacobian array has the wrong shape")
        if (want_tangents or want_hvp) and (v is None or v.shape[0] != points
                                            or v.shape[1] != n):
            raise ValueError("directions must have the shape of the points")
        if want_tangents and (tangents.shape[0] != points or tangents.shape[1] != m):
            raise ValueError("replay tangent array has the wrong shape")
        if want_hvp and (hvp.shape[0] != points or hvp.shape[1] != n):
            raise ValueError("replay Hessian-vector array has the wrong shape")
        if points == 0:
            return 0
        if want_tangents or want_hvp:
            row_bytes = 72
        if points == 1:
            chunk = 1
        else:
            chunk = CHUNK_BYTES // (row_bytes * self.tape.n_rows)
            chunk = max(MIN_CHUNK, min(MAX_CHUNK, chunk, points))
        work = self._take(chunk)
        if want_tangents or want_hvp:
            work.ensure_second_order()
        try:
            with nogil:
                start = 0
                while start < points:
                    count = min(chunk, points - start)
                    self._forward(work, &x[start, 0], n, count, &ok[start], want_hvp)
                    for j in range(m):
                        row = self.outputs[j]
                        for k in range(count):
                            values[start + k, j] = work.value[row * chunk + k]
                    if want_jacobian:
                        for j in range(m):
                            self._reverse(work, j)
                            top = self.outputs[j]
                            for k in range(count):
                                for i in range(n):
                                    row = self.inputs[i]
                                    # rows above the output were not swept: their gradient is 0
                                    jacobian[start + k, j, i] = (
                                        work.adjoint[row * chunk + k] if row <= top else 0.0)
                    if want_tangents or want_hvp:
                        self._tangent(work, &v[start, 0], n, count)
                    if want_tangents:
                        for j in range(m):
                            row = self.outputs[j]
                            for k in range(count):
                                tangents[start + k, j] = work.tangent[row * chunk + k]
                    if want_hvp:
                        top = self.outputs[0]
                        second_order_sweep_points(
                            self.tape.arg0, self.tape.arg1, work.d0, work.d1, work.daa,
                            work.dab, work.dbb, work.tangent, work.adjoint,
                            work.adjoint_tangent, top, self.first_computed, chunk)
                        for k in range(count):
                            for i in range(n):
                                row = self.inputs[i]
                                hvp[start + k, i] = (work.adjoint_tangent[row * chunk + k]
                                                     if row <= top else 0.0)
                    start += chunk
                for k in range(points):
                    failed += ok[k] == 0
        finally:
            self._give_back(work)
        return failed

    cdef void _point_sweeps(self, Workspace work, Py_buffer* x, Py_buffer* v, Py_buffer* result,
                            int mode, uint8_t* ok, double* value, double* tangent) noexcept nogil:
        """The sweeps of ``point`` (see there) on its acquired buffers."""
        cdef Py_ssize_t n = self.inputs.shape[0], i, row, top = self.outputs[0]
        cdef double* out = <double*>result.buf if mode == 1 or mode == 3 else NULL
        cdef bint finite
        self._forward(work, <const double*>x.buf, 0, 1, ok, mode == 3)
        value[0] = work.value[top]
        if ok[0] and mode == 1:
            self._reverse(work, 0)
            for i in range(n):
                row = self.inputs[i]
                out[i] = work.adjoint[row] if row <= top else 0.0
        elif ok[0] and mode == 2:
            self._tangent(work, <const double*>v.buf, 0, 1)
            tangent[0] = work.tangent[top]
        elif ok[0] and mode == 3:
            # A Hessian with one lane, seeded with v (see hessian_point): plain
            # products, and exact zeros again only if an entry is inf or NaN.
            for i in range(n):
                work.tangent[self.inputs[i]] = (<const double*>v.buf)[i]
            hessian_lane_sweeps(self, work, work, 1, True, False)
            finite = True
            for i in range(n):
                row = self.inputs[i]
                if row <= top and not finite_number(work.adjoint_tangent[row]):
                    finite = False   # (rows above the output were not swept)
            if not finite:
                hessian_lane_sweeps(self, work, work, 1, False, True)
            for i in range(n):
                row = self.inputs[i]
                out[i] = work.adjoint_tangent[row] if row <= top else 0.0

    def point(self, x, v, int mode):
        """Fast path for one point of a scalar-output function.

        mode 0: ``value``; 1: ``(value, gradient)``; 2: ``(value, tangent along v)``;
        3: ``Hessian times v``.  Returns None when the general path is needed: x
        (or v) is not a contiguous 1-D float64 array of n_inputs numbers, or a
        guard failed.
        """
        cdef Py_buffer x_view, v_view, result_view
        cdef Py_ssize_t n = self.inputs.shape[0]
        cdef double value, tangent = 0.0
        cdef uint8_t ok = 0
        cdef bint has_x = False, has_v = False, has_result = False
        cdef Workspace work
        if self.outputs.shape[0] != 1 or type(x) is not ndarray or (
                mode >= 2 and type(v) is not ndarray):
            return None
        try:
            has_x = _float64_vector(x, &x_view, n)
            if not has_x:
                return None
            if mode >= 2:
                has_v = _float64_vector(v, &v_view, n)
                if not has_v:
                    return None
            if mode == 1 or mode == 3:
                result = empty(n)
                has_result = _float64_vector(result, &result_view, n)   # a raw pointer
            work = self._take(1)
            if mode >= 2:
                work.ensure_second_order()
            if self.tape.n_rows < GIL_RELEASE_ROWS:      # as Tape._sweep: not worth it
                self._point_sweeps(work, &x_view, &v_view, &result_view, mode, &ok, &value,
                                   &tangent)
            else:
                with nogil:
                    self._point_sweeps(work, &x_view, &v_view, &result_view, mode, &ok, &value,
                                       &tangent)
            self._give_back(work)
        finally:
            _release(&x_view, has_x)
            _release(&v_view, has_v)
            _release(&result_view, has_result)
        if not ok:
            return None
        if mode == 0:
            return value
        if mode == 2:
            return (value, tangent)
        return (value, result) if mode == 1 else result

    def hessian_structure(self):
        """The sparsity of output 0's Hessian and a colouring of its columns, or None.

        Returns ``(indptr, indices, colors, n_colors)``: the structural nonzeros
        in CSR form (row i's columns are ``indices[indptr[i]:indptr[i + 1]]``,
        ascending; symmetric, so also column i's rows), and a colour per column
        such that no two columns of one colour share a row.  ``H @ S``, with one
        seed lane per colour, then holds every entry exactly once (n colours: a
        dense Hessian).  None when the tape is too large to analyse; computed on
        first use and kept.

        The pattern holds at every x: it comes from op codes alone.  Each row's
        set of inputs it depends on is propagated forward; each row on the path
        to the output adds, per the second partials its op can have
        (``op_curvature``), the products dep(a) x dep(a), dep(a) x dep(b) and
        dep(b) x dep(b).  The colouring is greedy, in input order (optimal for
        banded Hessians such as Rosenbrock's: 3 colours).
        """
        if self._structure is None:
            structure = self._analyse_hessian()
            if self._structure is not None:    # another thread's analysis (the same) won
                return self._structure or None
            if structure:
                indptr, indices, colors, n_colors = structure
                # The sweeps' own copies; the arrays handed out are read-only, so
                # nothing a caller does to them reaches the sweeps.
                self.hessian_indptr = indptr.copy()
                self.hessian_indices = indices.copy()
                self.hessian_colors = colors.copy()
                self.hessian_n_colors = n_colors
                if n_colors < self.inputs.shape[0]:    # compressed: symmetrised by mirror
                    self.hessian_mirror = _mirror_positions(indptr, indices)
                for array in (indptr, indices, colors):
                    array.flags.writeable = False
            # Set last: a thread that finds _structure set finds the fields set too
            # (the analysis releases the GIL, so two threads may both run it).
            self._structure = structure
        return self._structure or None

    def _analyse_hessian(self):
        """``hessian_structure``'s analysis: ``()`` if too large, else its tuple.
        Scratch bitsets and marks are C buffers (numpy arrays would cost more
        than the analysis of a small tape); only the results are arrays."""
        cdef Py_ssize_t n = self.inputs.shape[0], top = self.outputs[0]
        cdef Py_ssize_t words = (n + 63) // 64
        if (top + 1) * words > STRUCTURE_MAX_WORDS:
            return ()
        # dep: for every row, the inputs it depends on (a bitset of `words` words);
        # pattern: for every input, the inputs it shares a Hessian entry with.
        cdef uint64_t* dep = <uint64_t*>calloc((top + 1) * words, sizeof(uint64_t))
        cdef uint64_t* pattern = <uint64_t*>calloc(n * words, sizeof(uint64_t))
        cdef Py_ssize_t* scratch = <Py_ssize_t*>malloc((top + n + 2) * sizeof(Py_ssize_t))
        try:
            if dep == NULL or pattern == NULL or scratch == NULL:
                raise MemoryError("no memory for the Hessian analysis")
            if not self._dependencies(dep, pattern, words, scratch):
                return ()                      # a large, nearly dense Hessian: give up
            return self._colouring(pattern, words, scratch)
        finally:
            free(dep)
            free(pattern)
            free(scratch)

    cdef int _build_plan(self) except -1:
        """Set ``hessian_plan`` for a compressed structure (None where the lanes cost
        less), on the first Hessian that asks for it: a plan pays for its building
        over several Hessians of one recording, not in a one-off one (the eager
        ``wengert.hessian`` takes the lanes).  The dependency bitsets are
        propagated again: the analysis does not keep them."""
        cdef Py_ssize_t n = self.inputs.shape[0], top = self.outputs[0]
        cdef Py_ssize_t words = (n + 63) // 64
        cdef uint64_t* dep = <uint64_t*>calloc((top + 1) * words, sizeof(uint64_t))
        cdef uint64_t* pattern = <uint64_t*>calloc(n * words, sizeof(uint64_t))
        cdef Py_ssize_t* scratch = <Py_ssize_t*>malloc((top + n + 2) * sizeof(Py_ssize_t))
        plan = None
        try:
            if dep == NULL or pattern == NULL or scratch == NULL:
                raise MemoryError("no memory for the Hessian plan")   # (caught below)
            if self._dependencies(dep, pattern, words, scratch):   # (it was, for the structure)
                plan = hessian_plan(self, dep, scratch, words, self.hessian_indptr,
                                    self.hessian_indices, self.hessian_n_colors)
        except MemoryError:                    # the plan is optional: the lanes need none
            plan = None
        finally:
            free(dep)
            free(pattern)
            free(scratch)
        self.hessian_plan = plan
        self._plan_built = True                # set last, as _structure
        return 0

    cdef bint _dependencies(self, uint64_t* dep, uint64_t* pattern, Py_ssize_t words,
                            Py_ssize_t* scratch) noexcept:
        """Fill dep and pattern (zeroed); False if the work passes STRUCTURE_MAX_COST.
        scratch holds top + 1 marks, left there: 1 where the output depends on the
        row (its live rows)."""
        cdef Py_ssize_t n = self.inputs.shape[0], top = self.outputs[0], i, j, w, a, b
        cdef Py_ssize_t cost = 0
        cdef int curvature
        cdef const uint8_t* ops = self.tape.op
        cdef const int32_t* arg0 = self.tape.arg0
        cdef const int32_t* arg1 = self.tape.arg1
        cdef Py_ssize_t* live = scratch        # rows the output depends on: 1
        with nogil:
            memset(live, 0, (top + 1) * sizeof(Py_ssize_t))
            live[top] = 1
            for i in range(top, 0, -1):
                if live[i]:
                    live[arg0[i]] = 1          # unused operands point at row 0
                    live[arg1[i]] = 1
            for j in range(n):                 # an input's bit, on its row
                i = self.inputs[j]
                if i <= top:
                    dep[i * words + j // 64] = (<uint64_t>1) << (j % 64)
            for i in range(1, top + 1):
                if op_arity(ops[i]) == 0:      # INPUT: set above; CONST: no inputs
                    continue
                a = arg0[i] * words
                b = arg1[i] * words
                for w in range(words):
                    dep[i * words + w] = dep[a + w] | dep[b + w]
                curvature = op_curvature(ops[i])
                if not live[i] or curvature == 0:
                    continue
                if curvature & CURVES_AA:
                    cost += add_pairs(pattern, &dep[a], &dep[a], words)
                if curvature & CURVES_AB:
                    cost += add_pairs(pattern, &dep[a], &dep[b], words)
                    cost += add_pairs(pattern, &dep[b], &dep[a], words)
                if curvature & CURVES_BB:
                    cost += add_pairs(pattern, &dep[b], &dep[b], words)
                if cost > STRUCTURE_MAX_COST:
                    return False
        return True

    cdef tuple _colouring(self, const uint64_t* pattern, Py_ssize_t words,
                          Py_ssize_t* scratch):
        """The CSR pattern of the bitsets and a greedy colouring of its columns.
        scratch holds n + 1 entries."""
        cdef Py_ssize_t n = self.inputs.shape[0], i, j, k, p, q, nnz
        cdef Py_ssize_t cost = 0, widest = 0, n_colors = 0, color
        indptr_array = np.zeros(n + 1, dtype=np.intp)
        cdef Py_ssize_t[::1] indptr = indptr_array
        for j in range(n):
            k = count_bits(&pattern[j * words], words)
            indptr[j + 1] = indptr[j] + k
            cost += k * k                      # the colouring's work on row j
            widest = max(widest, k)
        nnz = indptr[n]
        indices_array = np.empty(nnz, dtype=np.int32)
        cdef int32_t[::1] indices = indices_array
        for j in range(n):
            if indptr[j + 1] > indptr[j]:
                list_inputs(&pattern[j * words], words, &indices[indptr[j]])
        # A full row shares a row with every column, and a huge colouring cost
        # means nearly dense: one colour per column, no colouring.
        if widest == n or cost > STRUCTURE_MAX_COST:
            return (indptr_array, indices_array, np.arange(n, dtype=np.int32), n)
        colors_array = np.empty(n, dtype=np.int32)
        cdef int32_t[::1] colors = colors_array
        cdef Py_ssize_t* taken = scratch       # taken[c] == j: colour c clashes with column j
        for j in range(n):
            colors[j] = -1
            taken[j] = -1
        taken[n] = -1
        for j in range(n):
            for p in range(indptr[j], indptr[j + 1]):      # rows i of column j (symmetric)
                i = indices[p]
                for q in range(indptr[i], indptr[i + 1]):  # columns k sharing row i
                    k = indices[q]
                    if colors[k] >= 0:
                        taken[colors[k]] = j
            color = 0
            while taken[color] == j:
                color += 1
            colors[j] = <int32_t>color
            n_colors = max(n_colors, color + 1)
        return (indptr_array, indices_array, colors_array, n_colors)

    def hessian_point(self, x, bint sparse=False, bint use_plan=True):
        """The Hessian of output 0 at one point x, exactly symmetric, or None if a
        guard fails there.

        One forward pass computes values and first and second partials, the same
        for every direction.  The lanes of a workspace then carry seed
        directions, and each block of lanes costs one tangent and one
        second-order sweep over shared partials (the first block's also computes
        the adjoints, which all blocks share).  With
        a sparse structure (``hessian_structure``) a lane seeds every input of
        one colour and n_colors lanes give every entry; otherwise lane j is e_j.
        The lane sweeps multiply plainly (see ``product``); if any entry comes
        out inf or NaN they run again with exact zeros.

        With ``use_plan``, a compressed structure gets a ``HessianPlan`` on first
        use (``_build_plan``); where it has one (cheaper than the lanes), a reverse
        sweep gives the adjoints and the plan the entries instead.  If an entry
        comes out inf or NaN, the lanes run with exact zeros after all.

        Returns an (n, n) array, or with ``sparse`` (which needs the structure)
        the values of the structural nonzeros in the order of its ``indices``
        (row by row).
        """
        cdef Py_ssize_t n = self.inputs.shape[0], rows = self.tape.n_rows
        cdef Py_ssize_t lanes, seeds = n, nnz = 0, i, p
        cdef bint compressed, exact_zeros = False
        cdef uint8_t ok = 0
        cdef Workspace one = None, work = None
        cdef Py_ssize_t[::1] indptr
        cdef int32_t[::1] indices, colors, mirror
        # Raw pointers into those for the sweeps (NULL: no compressed structure)
        cdef const Py_ssize_t* indptr_at = NULL
        cdef const int32_t* indices_at = NULL
        cdef const int32_t* colors_at = NULL
        cdef const int32_t* mirror_at = NULL
        cdef HessianPlan plan = None
        cdef double* slots = NULL              # the plan's gradients
        # Raw buffers (no memoryview objects: they cost more than a small sweep)
        cdef Py_buffer x_view, h_view, data_view
        cdef bint has_x = False, has_h = False, has_data = False
        cdef double* H = NULL                  # the dense result, row-major
        cdef double* data = NULL               # the structural nonzeros
        point = x
        has_x = _float64_vector(point, &x_view, n)
        if not has_x:
            point = np.ascontiguousarray(x, dtype=np.float64)
            if point.ndim != 1 or point.shape[0] != n:
                raise ValueError(f"x must have {n} inputs, got shape {point.shape}")
        try:
            if not has_x:                      # (ascontiguousarray made it one)
                has_x = _float64_vector(point, &x_view, n)
                if not has_x:
                    raise ValueError(f"x must be {n} real numbers")
            if self._structure is None:
                self.hessian_structure()
            if sparse and not self._structure:
                raise ValueError("this Hessian has no sparse structure (see hessian_structure)")
            compressed = self._structure and self.hessian_n_colors < n
            if compressed:
                if use_plan:
                    if not self._plan_built:
                        self._build_plan()
                    plan = self.hessian_plan
                seeds = self.hessian_n_colors
                # Local references, taken with the GIL: a second thread's first
                # analysis may replace the fields (with equal arrays) meanwhile.
                indptr = self.hessian_indptr
                indices = self.hessian_indices
                colors = self.hessian_colors
                mirror = self.hessian_mirror
                nnz = indptr[n]
                indptr_at = &indptr[0]
                colors_at = &colors[0]
                if nnz:
                    indices_at = &indices[0]
                    mirror_at = &mirror[0]
            elif sparse:                       # n colours: dense sweeps, then the nonzeros
                hessian = self.hessian_point(point)
                if hessian is None:
                    return None
                return hessian[np.repeat(np.arange(n), np.diff(self.hessian_indptr)),
                               self.hessian_indices]
            if sparse:
                values = empty(nnz)
                has_data = _float64_vector(values, &data_view, nnz)
                data = <double*>data_view.buf
            else:
                hessian = np.zeros((n, n))
                PyObject_GetBuffer(hessian, &h_view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
                has_h = True
                H = <double*>h_view.buf
                if compressed:
                    data = <double*>malloc(max(nnz, 1) * sizeof(double))
                    if data == NULL:
                        raise MemoryError("no memory for the Hessian's nonzeros")
            if plan is not None:
                slots = <double*>malloc(max(plan.n_slots, 1) * sizeof(double))
                if slots == NULL:
                    raise MemoryError("no memory for the Hessian plan's gradients")
            one = self._take(1)
            one.ensure_second_order()
            with nogil:
                self._forward(one, <const double*>x_view.buf, 0, 1, &ok, True)
                if ok and plan is not None:
                    exact_zeros = not self._hessian_by_plan(one, plan, mirror_at, nnz, slots,
                                                            data)
            if ok and (plan is None or exact_zeros):
                # As many lanes as fit the budget of the two lane arrays, a multiple of
                # 4 within [MIN_CHUNK, 64]: each row's branching is shared by more
                # lanes (the MLP's Hessian: 32 lanes 25% faster than 8), until the
                # arrays fall out of cache (64 lanes slower again).
                lanes = min(seeds, max(MIN_CHUNK, min(64, HESSIAN_LANE_BYTES // (16 * rows)
                                                      // 4 * 4)))
                work = self._take(lanes)
                work.ensure_second_order()
                with nogil:
                    self._hessian_by_lanes(one, work, lanes, seeds, indptr_at, indices_at,
                                           colors_at, mirror_at, exact_zeros, H, data)
            if ok and compressed and not sparse:
                for i in range(n):
                    for p in range(indptr[i], indptr[i + 1]):
                        H[i * n + indices[p]] = data[p]
        finally:
            free(slots)
            if not sparse:
                free(data)
            if one is not None:
                self._give_back(one)
            if work is not None:
                self._give_back(work)
            _release(&x_view, has_x)
            _release(&h_view, has_h)
            _release(&data_view, has_data)
        if not ok:
            return None
        return values if sparse else hessian

    cdef bint _hessian_by_plan(self, Workspace one, HessianPlan plan, const int32_t* mirror,
                               Py_ssize_t nnz, double* slots, double* data) noexcept nogil:
        """The nnz structural nonzeros into data from the partials in ``one`` by the
        plan (after a reverse sweep for the adjoints); False if one is inf or NaN."""
        cdef Py_ssize_t p, q
        cdef bint finite = True
        reverse_sweep(self.tape.arg0, self.tape.arg1, one.d0, one.d1, one.adjoint,
                      self.outputs[0], 1.0, self.first_computed)
        memset(data, 0, nnz * sizeof(double))
        plan.run(one.d0, one.d1, one.daa, one.dab, one.dbb, one.adjoint, slots, data)
        for p in range(nnz):
            q = mirror[p]
            if q > p:                          # (i, j) above the diagonal: (j, i) below
                data[q] = data[p]
            if not finite_number(data[p]):
                finite = False
        return finite

    cdef void _hessian_by_lanes(self, Workspace one, Workspace work, Py_ssize_t lanes,
                                Py_ssize_t seeds, const Py_ssize_t* indptr,
                                const int32_t* indices, const int32_t* colors,
                                const int32_t* mirror, bint exact_zeros, double* H,
                                double* data) noexcept nogil:
        """The Hessian from the partials in ``one`` by blocks of lanes in ``work``:
        into data (the structural nonzeros) if compressed (the structure's arrays
        given; colors NULL: not compressed), else into H.  The first
        block computes the adjoints unless ``exact_zeros``, which means they are
        there already (the plan's reverse sweep) and the lanes run with exact
        zeros from the start."""
        cdef Py_ssize_t n = self.inputs.shape[0], top = self.outputs[0]
        cdef Py_ssize_t start, count, i, j, k, p, q, row, c
        cdef bint finite, compressed = colors != NULL
        cdef double h
        while True:                            # plain products, then (rarely) exact zeros
            finite = True
            start = 0
            while start < seeds:
                count = min(lanes, seeds - start)
                for j in range(n):             # lane k seeds colour (or input) start + k
                    row = self.inputs[j]
                    c = colors[j] if compressed else j
                    for k in range(lanes):
                        work.tangent[row * lanes + k] = 1.0 if c == start + k else 0.0
                if exact_zeros:                # literals: two specialised copies
                    hessian_lane_sweeps(self, one, work, lanes, False, True)
                else:
                    hessian_lane_sweeps(self, one, work, lanes, start == 0, False)
                for i in range(n):             # row i of H from input i's adjoint tangents
                    row = self.inputs[i]
                    if row > top:              # not swept: zero (and outside the structure)
                        continue
                    if not compressed:
                        for k in range(count):
                            h = work.adjoint_tangent[row * lanes + k]
                            if not finite_number(h):
                                finite = False
                            H[i * n + start + k] = h
                        continue
                    for p in range(indptr[i], indptr[i + 1]):
                        c = colors[indices[p]] - start
                        if 0 <= c < count:
                            h = work.adjoint_tangent[row * lanes + c]
                            if not finite_number(h):
                                finite = False
                            data[p] = h
                start += lanes
            if finite or exact_zeros:
                break
            exact_zeros = True
        # H[i, j] and H[j, i] come from different lanes: average them so H is
        # exactly symmetric.
        if not compressed:
            for i in range(n):
                for j in range(i + 1, n):
                    h = 0.5 * (H[i * n + j] + H[j * n + i])
                    H[i * n + j] = h
                    H[j * n + i] = h
        else:
            for p in range(indptr[n]):
                q = mirror[p]                  # the entry (j, i) of entry p = (i, j)
                if q > p:
                    h = 0.5 * (data[p] + data[q])
                    data[p] = h
                    data[q] = h

    def __reduce__(self):
        arrays = self.arrays()
        return (Replay, tuple(arrays[name] for name in REPLAY_ARRAYS))


#: The arrays that define a Replay, in constructor order, with their dtypes.
REPLAY_ARRAYS = ("op", "arg0", "arg1", "value", "inputs", "outputs",
                 "guard_kind", "guard_a", "guard_b", "guard_expected")
REPLAY_DTYPES = dict(op=np.uint8, arg0=np.int32, arg1=np.int32, value=np.float64,
                     inputs=np.int32, outputs=np.int32, guard_kind=np.uint8,
                     guard_a=np.int32, guard_b=np.int32, guard_expected=np.float64)


# Looked up once: Replay.point's fast path runs in a few hundred nanoseconds.
cdef object ndarray = np.ndarray
cdef object empty = np.empty

# The guard arrays of a recording without guards: shared, as typed views.
cdef uint8_t[::1] NO_GUARD_KIND_VIEW = np.empty(0, dtype=np.uint8)
cdef int32_t[::1] NO_GUARD_ROW_VIEW = np.empty(0, dtype=np.int32)
cdef double[::1] NO_GUARD_VALUE_VIEW = np.empty(0, dtype=np.float64)


cdef object _mirror_positions(const Py_ssize_t[::1] indptr, const int32_t[::1] indices):
    """For a symmetric CSR pattern with ascending columns: where entry (j, i) sits,
    for each entry p = (i, j).  Rows are walked in order, so the entries (j, i)
    with i < j come up in row j's order: a cursor per row finds them."""
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, j, p, q
    mirror_array = np.empty(indptr[n], dtype=np.int32)
    cdef int32_t[::1] mirror = mirror_array
    cdef Py_ssize_t* cursor = <Py_ssize_t*>malloc((n + 1) * sizeof(Py_ssize_t))
    if cursor == NULL:
        raise MemoryError("no memory for the Hessian's mirror index")
    try:
        memcpy(cursor, &indptr[0], (n + 1) * sizeof(Py_ssize_t))
        for i in range(n):
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j == i:
                    mirror[p] = <int32_t>p
                elif j > i:            # (j, i) is row j's next entry left of its diagonal
                    q = cursor[j]
                    cursor[j] += 1
                    mirror[p] = <int32_t>q
                    mirror[q] = <int32_t>p
    finally:                           # (a debug build's bounds checks can raise)
        free(cursor)
    return mirror_array


cdef void _renumber_rows(const uint8_t* op, const int32_t* arg0, const int32_t* arg1,
                         const double* d0, const double* d1, const double* value,
                         const int32_t* where, Py_ssize_t rows,
                         uint8_t* new_op, int32_t* new_arg0, int32_t* new_arg1,
                         double* new_d0, double* new_d1, double* new_value) noexcept nogil:
    """Copy row i of the first six columns to row where[i] of the others, operands
    renumbered (row 0, the sentinel, stays row 0)."""
    cdef Py_ssize_t i, j
    for i in range(rows):
        j = where[i]
        new_op[j] = op[i]
        new_arg0[j] = where[arg0[i]]
        new_arg1[j] = where[arg1[i]]
        new_d0[j] = d0[i]
        new_d1[j] = d1[i]
        new_value[j] = value[i]


cdef void _renumber_in_place(int32_t[::1] rows_of, const int32_t* where) noexcept:
    """rows_of[i] = where[rows_of[i]]: row numbers following a reordering."""
    cdef Py_ssize_t i
    for i in range(rows_of.shape[0]):
        rows_of[i] = where[rows_of[i]]


def _validated_replay_arrays(*given):
    """Check everything a replay will index; raise ValueError naming the first problem."""
    arrays = {}
    for name, array in zip(REPLAY_ARRAYS, given):
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{name} must be a numpy array, got {type(array).__name__}")
        if array.dtype != REPLAY_DTYPES[name]:
            raise ValueError(f"{name} must have dtype {np.dtype(REPLAY_DTYPES[name])}, "
                             f"got {array.dtype}")
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
        arrays[name] = np.ascontiguousarray(array)
    op, arg0, arg1, value = arrays["op"], arrays["arg0"], arrays["arg1"], arrays["value"]
    rows = op.shape[0]
    if rows < 1 or rows > INT32_MAX:
        raise ValueError(f"a tape needs between 1 and {INT32_MAX} rows, got {rows}")
    for name in ("arg0", "arg1", "value"):
        if arrays[name].shape[0] != rows:
            raise ValueError(f"{name} has {arrays[name].shape[0]} rows, op has {rows}")
    if np.any(op >= N_OPS):
        bad = int(np.flatnonzero(op >= N_OPS)[0])
        raise ValueError(f"row {bad} has unknown op code {op[bad]}")
    if op[0] != CONST or arg0[0] != 0 or arg1[0] != 0 or value[0] != 0.0:
        raise ValueError("row 0 must be the sentinel: CONST 0.0 with no operands")
    arity = np.asarray(OP_ARITY, dtype=np.int8)[op]
    row = np.arange(rows)
    for name, args, used in (("arg0", arg0, arity >= 1), ("arg1", arg1, arity == 2)):
        bad = (used & ((args < 0) | (args >= row))) | (~used & (args != 0))
        bad[0] = False
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"row {i} ({OP_NAMES[op[i]]}): {name} = {args[i]} must "
                             + ("point at an earlier row" if used[i] else "be 0"))
    pow_const = np.flatnonzero(op == POW_CONST)
    if pow_const.size and np.any(op[arg1[pow_const]] != CONST):
        i = int(pow_const[np.flatnonzero(op[arg1[pow_const]] != CONST)[0]])
        raise ValueError(f"row {i} (pow_const): its exponent row must be a constant")
    kinds = arrays["guard_kind"]
    for name in ("guard_a", "guard_b", "guard_expected"):
        if arrays[name].shape[0] != kinds.shape[0]:
            raise ValueError(f"{name} has {arrays[name].shape[0]} guards, "
                             f"guard_kind has {kinds.shape[0]}")
    # inputs, outputs and guard rows: Replay._check_ends, shared with fresh recordings
    return tuple(arrays[name] for name in REPLAY_ARRAYS)
