# cython: language_level=3
"""The tape's layout: read this file to know every byte wengert records.

A tape is a Wengert list: one row per elementary operation, stored as a
structure of arrays (one C array per column below, all of length
``capacity``).  Row order is a topological order: a row's operands are
always earlier rows, so the reverse sweep is a single backward loop.

Row 0 is a sentinel (a CONST row of value 0.0): rows with fewer than two
operands point their unused operand(s) at it with a zero partial, so the
reverse sweep needs no special case (it may accumulate into the sentinel's
adjoint, which nothing reads).

Constants are rows too (op CONST, value = the constant), so a tape can be
replayed at new inputs from its op codes, operand indices and CONST/INPUT
values alone: for every other row, ``op_eval(op, value[arg0], value[arg1])``
(``_optable.pxd``) recomputes the value and both partials.  A number in an
expression (the ``0.01`` of ``y + 0.01``) reuses the row of an equal constant
recorded earlier when the constant pool below still points at it, so a loop
that adds 0.01 at every step records one CONST row, not one per step.

Per row: 1 (op) + 4 + 4 (operands) + 8 + 8 (partials) + 8 (value) = 33 bytes,
plus 8 bytes of adjoint once a backward pass has run.
"""

cimport cython
from cpython.buffer cimport Py_buffer
from libc.stdint cimport int32_t, uint8_t, uint64_t


cdef class Var

cdef enum:
    CONSTANT_SLOT_BITS = 4                       # wengert.reference uses the same pool
    CONSTANT_SLOTS = 1 << CONSTANT_SLOT_BITS     # slots of a tape's constant pool


@cython.final
cdef class Tape:
    cdef:
        # -- the rows --------------------------------------------------------
        uint8_t*    op                # OpCode of the row (enum in _optable.pxd)
        int32_t*    arg0              # row of the first operand (< this row); 0 if none
        int32_t*    arg1              # row of the second operand (< this row); 0 if none
        double*     d0                # d value / d value[arg0]; 0 for CONST and INPUT rows,
                                      # and 0 where arg0 is a constant (it needs no adjoint)
        double*     d1                # d value / d value[arg1]; 0 for unary ops and constants
        double*     value             # the row's value; for CONST and INPUT rows, the data itself
        Py_ssize_t  n_rows            # rows in use, the sentinel included (>= 1)
        Py_ssize_t  capacity          # rows that may be used: pushing row `capacity` grows the
                                      # columns (a Replay lowers it to n_rows, so pushes fail)
        Py_ssize_t  allocated         # rows allocated in each column above (>= capacity)
        Py_ssize_t  first_op          # the first row made by an op (0: none, or unknown);
                                      # rows below it are leaves, which pass nothing on, so
                                      # the reverse sweep stops there (a model's parameters)

        # -- gradients -------------------------------------------------------
        double*     adjoint           # d y / d value[i] after backward(y); made by a first backward
        Py_ssize_t  adjoint_capacity  # entries allocated in adjoint
        Py_ssize_t  grad_rows         # adjoint[i] is the gradient for i < grad_rows; above, 0
        readonly Py_ssize_t backward_passes   # reverse sweeps run so far (nn: a new step began)

        # -- lifetime of variables -------------------------------------------
        # A Var is alive while no rewind since it last checked dropped its row.
        # Every rewind or reset starts a new epoch; the cuts form a monotonic
        # stack (epochs and kept row counts both increasing from the bottom),
        # so "the fewest rows kept by any rewind after epoch e" is one binary
        # search, and a training loop that rewinds to one mark keeps one entry.
        uint64_t    epoch             # number of rewinds/resets so far
        uint64_t*   cut_epoch         # epoch each surviving cut began
        Py_ssize_t* cut_rows          # rows (sentinel included) that cut kept
        Py_ssize_t  n_cuts            # entries in the cut stack
        Py_ssize_t  cuts_capacity     # entries allocated in the cut stack

        int         sweeping          # > 0 while a sweep runs without the GIL: growth is refused
        bint        frozen            # owned by a Replay: no row may be added, dropped or changed
        list        _tokens           # ContextVar tokens of nested `with tape:` blocks
        public list guards            # recording for replay: (GuardKind, row a, row b, expected)
                                      # for every comparison/conversion of a Var; None otherwise
        # -- the constant pool (not part of the layout: a cache) ---------------
        # Row of a recent CONST row per slot, the slot chosen by the constant's
        # bits (push_constant).  An entry is trusted only while that row still
        # exists and still holds a CONST of exactly those bits, so rewinds,
        # resets and reused buffers need no bookkeeping.  0: empty.
        Py_ssize_t  constant_rows[CONSTANT_SLOTS]

    cdef int _grow(self, Py_ssize_t min_rows) except -1
    cdef Py_ssize_t push(self, int op, Py_ssize_t a, Py_ssize_t b) except -1
    cdef Py_ssize_t push_leaf(self, int op, double value) except -1
    cdef Py_ssize_t push_constant(self, double value) except -1
    cdef Var new_var(self, Py_ssize_t row)
    cdef int check_alive(self, Var v) except -1
    cdef int _revalidate(self, Var v) except -1
    cdef int check_var(self, object x, str where) except -1
    cdef int _prepare_adjoint(self) except -1
    cdef int _sweep(self, Py_ssize_t top, double seed) except -1


# A guard is a branch the recorded Python code took on a value: replay at a new
# input is valid only while every guard still holds (wengert.record).
ctypedef enum GuardKind:
    GUARD_LT = 0       # value[a] < value[b] gave `expected` (1.0 or 0.0); 0..5: comparisons
    GUARD_LE = 1
    GUARD_EQ = 2
    GUARD_NE = 3
    GUARD_GT = 4
    GUARD_GE = 5
    GUARD_VALUE = 6    # float(x), round(x, n): the value was baked in; value[a] == expected
    GUARD_TRUNC = 7    # int(x), math.trunc(x): trunc(value[a]) == expected
    GUARD_FLOOR = 8    # math.floor(x)
    GUARD_CEIL = 9     # math.ceil(x)
    GUARD_ROUND = 10   # round(x): round half to even, as Python
    GUARD_TRUTH = 11   # bool(x), `if x:`: (value[a] != 0) == expected
    N_GUARD_KINDS = 12


@cython.final
cdef class Workspace:
    # Per-call buffers of a replay, `points` values per row (point-minor: row i, point k
    # at i * points + k), so the inner loops run over contiguous points.
    cdef:
        Py_ssize_t points             # points per row (the batch chunk; 1 for a single point)
        Py_ssize_t rows               # rows of the replayed tape
        double*    value              # rows * points
        double*    d0                 # rows * points
        double*    d1                 # rows * points
        double*    adjoint            # rows * points
        # second order (forward-over-reverse), allocated when first needed:
        double*    tangent            # rows * points: directional derivative of each row
        double*    daa                # rows * points: second partials from op_eval
        double*    dab
        double*    dbb
        double*    adjoint_tangent    # rows * points: directional derivative of each adjoint

    cdef int ensure_second_order(self) except -1


@cython.final
cdef class HessianPlan:
    # A sparse Hessian as straight-line code over one point's partials: the
    # programs are described in _tape.pyx; every index was built from the tape.
    cdef:
        Py_ssize_t n_slots, n_ones, n_gradient_rows, n_curved_rows, n_moves, n_products
        int32_t* ones               # slot of each input's gradient (1.0)
        int32_t* gradient_row       # row of each computed gradient, ascending
        int32_t* gradient_end       # 2 per gradient row: end of its d0 moves, of its d1 moves
        int32_t* target             # move: slots[target] += partial * slots[source]
        int32_t* source
        int32_t* curved_row         # row of each curved row with products, ascending
        int32_t* curved_end         # 3 per curved row: end of its daa, dab, dbb products
        int32_t* entry              # product: values[entry] += g * d2 * slots[left] * slots[right]
        int32_t* left
        int32_t* right

    cdef void run(self, const double* d0, const double* d1, const double* daa,
                  const double* dab, const double* dbb, const double* adjoint,
                  double* slots, double* values) noexcept nogil


@cython.final
cdef class Replay:
    # A frozen copy of a recorded tape with its inputs, outputs and guards; every
    # array was validated on construction, so the sweeps run unchecked.  The copy
    # keeps its leaves (CONST, INPUT) first and its computed rows after them, each
    # group in recorded order (still a topological order): the sweeps run over the
    # contiguous range first_computed .. n_rows - 1 and never skip a row.
    cdef:
        Tape          tape            # private copy: never grown, never rewound, never handed out
        int32_t[::1]  inputs          # row of each input variable (op INPUT)
        int32_t[::1]  outputs         # row of each output
        uint8_t[::1]  guard_kind      # GuardKind of each guard
        int32_t[::1]  guard_a         # row compared or converted
        int32_t[::1]  guard_b         # row compared against (0 for conversions)
        double[::1]   guard_expected  # outcome recorded
        list          _pool           # idle Workspaces, reused across calls (list ops hold the GIL)
        Py_ssize_t    first_computed  # rows before it are leaves (_leaves_first), after computed
        object        _structure      # hessian_structure(): None until found, () if too big
        # Once found (a non-empty _structure), the structure in typed form:
        Py_ssize_t[::1] hessian_indptr    # CSR pattern: row i's entries start here
        int32_t[::1]  hessian_indices     # column of each entry, ascending in a row
        int32_t[::1]  hessian_colors      # colour of each column
        Py_ssize_t    hessian_n_colors    # how many colours (n: no compression)
        int32_t[::1]  hessian_mirror      # position of entry (j, i) for each entry (i, j)
        readonly HessianPlan hessian_plan  # None: the Hessian takes the lane sweeps
        bint          _plan_built         # hessian_plan was decided (_build_plan)

    cdef int _set_ends(self, object inputs, object outputs) except -1
    cdef int _check_ends(self) except -1
    cdef int _leaves_first(self) except -1
    cdef bint _dependencies(self, uint64_t* dep, uint64_t* pattern, Py_ssize_t words,
                            Py_ssize_t* scratch) noexcept
    cdef tuple _colouring(self, const uint64_t* pattern, Py_ssize_t words,
                          Py_ssize_t* scratch)
    cdef int _build_plan(self) except -1
    cdef Workspace _take(self, Py_ssize_t points)
    cdef void _give_back(self, Workspace work)
    cdef void _point_sweeps(self, Workspace work, Py_buffer* x, Py_buffer* v, Py_buffer* result,
                            int mode, uint8_t* ok, double* value, double* tangent) noexcept nogil
    cdef void _forward(self, Workspace work, const double* x, Py_ssize_t stride,
                       Py_ssize_t count, uint8_t* ok, bint second) noexcept nogil
    cdef void _tangent(self, Workspace work, const double* v, Py_ssize_t stride,
                       Py_ssize_t count) noexcept nogil
    cdef void _reverse(self, Workspace work, Py_ssize_t output) noexcept nogil
    cdef bint _hessian_by_plan(self, Workspace one, HessianPlan plan, const int32_t* mirror,
                               Py_ssize_t nnz, double* slots, double* data) noexcept nogil
    cdef void _hessian_by_lanes(self, Workspace one, Workspace work, Py_ssize_t lanes,
                                Py_ssize_t seeds, const Py_ssize_t* indptr,
                                const int32_t* indices, const int32_t* colors,
                                const int32_t* mirror, bint exact_zeros, double* H,
                                double* data) noexcept nogil


@cython.final
cdef class Var:
    cdef readonly Tape tape          # the tape holding this variable's row
    cdef readonly Py_ssize_t index   # the row (>= 1)
    cdef uint64_t epoch              # tape.epoch when this variable was last known alive
