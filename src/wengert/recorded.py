"""Record once, replay in C: ``wengert.record``.

``record(fun, x0)`` runs ``fun`` once on variables, keeps the tape, and
returns a ``RecordedFunction`` that evaluates value, gradient and Jacobian at
new inputs by replaying the tape in C (op codes and constants only; no Python
runs), for one point or a batch of points, with the GIL released.

Python control flow is recorded as guards: every comparison of a Var and
every conversion of a Var to a Python number.  Replay checks them at each new
input; where one fails, the function is recorded again at that input
(``retapes`` counts this) or, without ``fun`` or with ``retape=False``,
``BranchChanged`` is raised.  Plain Python over the compiled ``Replay``.
"""

import numbers
import pickle

import numpy as np

from wengert._tape import REPLAY_ARRAYS, Replay, Tape, Var

_FLOAT64 = np.dtype(np.float64)

__all__ = ["record", "load", "RecordedFunction", "BranchChanged"]

FILE_FORMAT = 1


class BranchChanged(RuntimeError):
    """Replay met an input where the recorded Python code would branch differently."""


def record(fun, x0, *, retape=True):
    """Record ``fun`` at ``x0`` for fast replay at new inputs.

    Args:
        fun: A function of one argument: a Var when ``x0`` is a number, or a
            list of Vars when ``x0`` is a 1-D array; it returns a scalar or a
            sequence of scalars.
        x0: Where to record: a real number or a 1-D array-like.
        retape: Whether to record again when a guard fails at a new input
            (``False`` raises ``BranchChanged`` instead).

    Returns:
        A ``RecordedFunction``.

    >>> import numpy as np
    >>> import wengert as wg
    >>> F = wg.record(lambda x: x[0] * x[1] + wg.sin(x[0]), np.zeros(2))
    >>> value, gradient = F.value_and_grad(np.array([1.0, 2.0]))
    >>> round(value, 6), gradient.round(6)
    (2.841471, array([2.540302, 1.      ]))
    >>> F(np.array([[0.0, 1.0], [1.0, 1.0]])).round(6)    # a batch of two points
    array([0.      , 1.841471])
    """
    return RecordedFunction(fun, x0, retape=retape)


class RecordedFunction:
    """A function recorded on a tape, evaluated at new inputs by replay in C.

    Every method takes one point (``x`` shaped like ``x0``) or a batch (an
    extra leading axis of k points) and returns fresh float64 arrays, or
    fills ``out=``.

    Attributes:
        retapes: How many times the function was recorded again because a
            guard failed.
        slow_points: How many points of the last call took the slow path.
    """

    # Sparse Hessians by a HessianPlan where it is cheaper than the lanes; the eager
    # wengert.hessian, one Hessian per recording, turns it off (building a plan
    # costs more than the lanes save once).
    _plan_hessians = True

    def __init__(self, fun, x0, *, retape=True):
        if not callable(fun):
            raise TypeError(f"record() expects a callable, got {type(fun).__name__}")
        self._fun = fun
        self._retape = retape
        if type(x0) is np.ndarray and x0.dtype is _FLOAT64 and x0.ndim == 1:
            self._scalar_input = False         # the common case, without _point's checks
            point = x0.reshape(1, -1)
        else:
            self._scalar_input = isinstance(x0, numbers.Real) and not isinstance(x0, bool)
            point = self._point(x0, "x0")
        if point.shape[0] != 1 or point.shape[1] == 0:
            raise ValueError("x0 must be a single point: a number or a non-empty 1-D array")
        self._n = point.shape[1]
        self._alternate = None       # the replay last recorded for a batch's other branch
        self._replay, self._scalar_output = self._record(point[0])
        self.retapes = 0
        self.slow_points = 0
        self._fast = self._scalar_output and not self._scalar_input

    # -- recording -------------------------------------------------------------

    def _record(self, x):
        tape = Tape()
        tape.guards = []
        try:
            with tape:
                if self._scalar_input:
                    argument = tape.var(x[0])
                    input_rows = [argument.index]
                else:
                    first = len(tape) + 1                        # variables() adds rows in order
                    argument = tape.variables(x)
                    input_rows = range(first, first + len(argument))
                output = self._fun(argument)
        finally:
            guards = tape.guards
            tape.guards = None
        if type(output) is Var and output.tape is tape:     # the common case, directly
            return Replay(tape, input_rows, [output.index], guards), True
        scalar_output = _is_scalar(output)
        items = [output] if scalar_output else _output_items(output)
        output_rows = [_output_row(tape, item) for item in items]
        return Replay(tape, input_rows, output_rows, guards), scalar_output

    # -- sizes -----------------------------------------------------------------

    def __len__(self):
        """Rows of the recorded tape."""
        return self._replay.n_rows

    @property
    def n_inputs(self):
        return self._n

    @property
    def n_outputs(self):
        return self._replay.n_outputs

    @property
    def n_guards(self):
        return self._replay.n_guards

    @property
    def tape(self):
        """A copy of the recorded tape, for inspection (``to_arrays()``, ``len``)."""
        return self._replay.tape_copy()

    def __repr__(self):
        name = getattr(self._fun, "__qualname__", "<unavailable>") if self._fun else "<loaded>"
        return (f"<wengert.RecordedFunction of {name}: {self._n} inputs, {self.n_outputs} "
                f"outputs, {len(self)} rows, {self.n_guards} guards>")

    # -- evaluation --------------------------------------------------------------

    def __call__(self, x, out=None):
        """The value(s) at x: a float (scalar output) or an array (m,); batched, (k,) or (k, m)."""
        if self._fast and out is None:
            value = self._replay.point(x, None, 0)    # one contiguous float64 point
            if value is not None:
                return value
        points, batched = self._points(x)
        values, _ = self._run(points, batched, want_jacobian=False,
                              values_out=_values_view(out, points, self.n_outputs,
                                                      self._value_shape(points, batched)))
        if not batched and self._scalar_output:
            return float(values[0, 0])
        return out if out is not None else values.reshape(self._value_shape(points, batched))

    def value_and_grad(self, x, out=None):
        """Value and gradient of a scalar-output function at x.

        Returns ``(value, gradient)``: a float and an array shaped like x (a
        float for a scalar argument); batched, values (k,) and gradients (k, n).
        ``out`` is the gradient array to fill, or a (values, gradients) pair.
        """
        if self._fast and out is None:               # (_fast implies a scalar output)
            result = self._replay.point(x, None, 1)   # one contiguous float64 point
            if result is not None:
                return result
        self._require_scalar_output("value_and_grad")
        values_out, gradient_out = out if isinstance(out, tuple) else (None, out)
        points, batched = self._points(x)
        values, jacobian = self._run(
            points, batched, want_jacobian=True,
            values_out=_values_view(values_out, points, 1, self._value_shape(points, batched)),
            jacobian_out=_jacobian_view(gradient_out, points, 1, self._n,
                                        self._gradient_shape(points, batched, False)))
        gradient = self._shape_gradient(jacobian, points, batched, False, gradient_out)
        if not batched:
            return float(values[0, 0]), gradient
        return (values_out if values_out is not None else values.reshape(-1)), gradient

    def grad(self, x, out=None):
        """The gradient of a scalar-output function at x (see ``value_and_grad``)."""
        return self.value_and_grad(x, out=out)[1]

    def jacobian(self, x, out=None):
        """The Jacobian at x: shape (m, n) (a scalar output or input drops its axis);
        batched, a leading axis k.  Uses n forward (tangent) sweeps when there are
        fewer inputs than outputs, else m reverse sweeps."""
        points, batched = self._points(x)
        view = _jacobian_view(out, points, self.n_outputs, self._n,
                              self._gradient_shape(points, batched, True))
        if self._n < self.n_outputs:
            jacobian = view if view is not None else np.empty((points.shape[0], self.n_outputs,
                                                               self._n))
            for k, point in enumerate(points):
                # one lane per input direction e_j, all at this point
                _, _, tangents, _ = self._run_lanes(point, want_tangents=True)
                jacobian[k] = tangents.T
        else:
            _, jacobian = self._run(points, batched, want_jacobian=True, jacobian_out=view)
        return self._shape_gradient(jacobian, points, batched, True, out)

    def jvp(self, x, v):
        """Value and directional derivative along v, by one forward (tangent) sweep.

        Returns ``(value, tangent)``: floats for a scalar output, arrays (m,)
        otherwise; batched (x and v of shape (k, n)), a leading axis k.
        """
        if self._fast:
            result = self._replay.point(x, v, 2)      # one contiguous float64 point
            if result is not None:
                return result
        points, batched = self._points(x)
        directions = self._directions(v, points)
        values, _, tangents, _ = self._run_all(points, batched, directions, want_tangents=True)
        if not batched and self._scalar_output:
            return float(values[0, 0]), float(tangents[0, 0])
        shape = self._value_shape(points, batched)
        return values.reshape(shape), tangents.reshape(shape)

    def hvp(self, x, v):
        """The Hessian of a scalar-output function at x times v (forward-over-reverse).

        Returns an array shaped like x (a float for a scalar argument); batched, (k, n).
        """
        if self._fast:                                # (_fast implies a scalar output)
            result = self._replay.point(x, v, 3)      # one contiguous float64 point
            if result is not None:
                return result
        self._require_scalar_output("hvp")
        points, batched = self._points(x)
        directions = self._directions(v, points)
        _, _, _, hvp = self._run_all(points, batched, directions, want_hvp=True)
        return self._shape_gradient(hvp[:, None, :], points, batched, False, None)

    def hessian(self, x, sparse=False):
        """The Hessian of a scalar-output function at x: (n, n), exactly symmetric;
        batched, (k, n, n).

        One second-order sweep carries many seed directions as lanes over shared
        partials.  Where the Hessian is sparse (``hessian_sparsity``), a lane
        seeds a group of inputs whose columns share no row, so a banded Hessian
        costs a few gradients whatever n: Rosenbrock's tridiagonal one takes 3
        lanes.  Where the structure's entries cost less as straight-line code
        over the operands' sparse gradients (a ``HessianPlan``, built by the
        first Hessian), one reverse sweep and that code replace the lanes.  With
        ``sparse=True``, returns a ``scipy.sparse.csr_array`` of the structural
        nonzeros (a list of them, batched).
        """
        if (self._fast and not sparse and type(x) is np.ndarray and x.ndim == 1
                and x.dtype == np.float64 and x.shape[0] == self._n):   # one point
            result = self._replay.hessian_point(x, False, self._plan_hessians)
            if result is not None:                    # None: a guard failed
                return result
        self._require_scalar_output("hessian")
        points, batched = self._points(x)
        if sparse:
            return self._sparse_hessians(points, batched)
        if not batched:
            hessian = self._hessian_point(points[0], False)
            return float(hessian[0, 0]) if self._scalar_input else hessian
        hessians = np.empty((points.shape[0], self._n, self._n))
        for k, point in enumerate(points):
            hessians[k] = self._hessian_point(point, False)
        return hessians[:, 0, 0] if self._scalar_input else hessians

    def hessian_sparsity(self):
        """Where the Hessian can be nonzero, at any x: ``(rows, cols)``, integer
        arrays of the structural nonzeros (both triangles, row by row), or None
        if the tape is too large to analyse.  Found from the op codes once;
        guards that re-record at another branch get their own.
        """
        self._require_scalar_output("hessian_sparsity")
        structure = self._replay.hessian_structure()
        if structure is None:
            return None
        indptr, indices = structure[0], structure[1]
        return np.repeat(np.arange(self._n), np.diff(indptr)), indices.astype(np.intp)

    # -- internals -----------------------------------------------------------------

    def _hessian_point(self, point, sparse):
        """The Hessian at one point from the replay whose guards hold there: dense,
        or (``sparse``, if that replay has a structure) its structural nonzeros."""
        if sparse and self._replay.hessian_structure() is None:
            sparse = False
        result = self._replay.hessian_point(point, sparse, self._plan_hessians)
        if result is None:                           # another branch: record it there
            self._failing(point[None, :], False, np.zeros(1, dtype=np.uint8))
            self._replay = self._record_branch(point)
            if sparse and self._replay.hessian_structure() is None:
                sparse = False
            result = self._replay.hessian_point(point, sparse, self._plan_hessians)
        return result

    def _sparse_hessians(self, points, batched):
        try:
            from scipy import sparse as scipy_sparse
        except ImportError:
            raise ImportError("hessian(x, sparse=True) returns a scipy.sparse array: "
                              "install scipy, or call hessian(x) for a dense one") from None
        shape = (self._n, self._n)
        hessians = []
        for point in points:
            values = self._hessian_point(point, True)
            structure = self._replay.hessian_structure()
            if structure is None:                    # dense: keep its nonzeros
                hessians.append(scipy_sparse.csr_array(values))
            else:
                # Copies: scipy keeps the arrays it is given, and its in-place
                # methods (eliminate_zeros, sort_indices) would change them.
                hessians.append(scipy_sparse.csr_array(
                    (values, structure[1].copy(), structure[0].copy()), shape=shape))
        return hessians if batched else hessians[0]


    def _require_scalar_output(self, method):
        if not self._scalar_output:
            raise TypeError(f"{method} needs a scalar-output function; this one returns "
                            f"{self.n_outputs} values: use jacobian")

    def _point(self, x, name):
        if np.iscomplexobj(x):
            raise TypeError(f"{name} must be real, got complex values")
        try:
            array = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be a real number or an array of real numbers: "
                            f"{error}") from None
        if self._scalar_input:
            if array.ndim > 1:
                raise ValueError(f"{name} must be a number or a 1-D batch of numbers, "
                                 f"got shape {array.shape}")
            return np.ascontiguousarray(array.reshape(-1, 1))
        if array.size == 0 and array.ndim == 1:
            return array.reshape(1, 0)
        if array.ndim not in (1, 2):
            raise ValueError(f"{name} must be a 1-D array (one point) or a 2-D array "
                             f"(a batch of points), got shape {array.shape}")
        return np.ascontiguousarray(array.reshape(-1, array.shape[-1]))

    def _points(self, x):
        points = self._point(x, "x")
        batched = np.ndim(x) == (1 if self._scalar_input else 2)
        if points.shape[1] != self._n:
            raise ValueError(f"x has {points.shape[1]} inputs per point; this function was "
                             f"recorded with {self._n}")
        return points, batched

    def _value_shape(self, points, batched):
        shape = () if self._scalar_output else (self.n_outputs,)
        return ((points.shape[0],) if batched else ()) + shape

    def _gradient_shape(self, points, batched, with_outputs):
        shape = (self.n_outputs,) if (with_outputs and not self._scalar_output) else ()
        shape += () if self._scalar_input else (self._n,)
        return ((points.shape[0],) if batched else ()) + shape

    def _shape_gradient(self, jacobian, points, batched, with_outputs, out):
        if out is not None:
            return out
        shape = self._gradient_shape(points, batched, with_outputs)
        if shape == ():
            return float(jacobian[0, 0, 0])
        return jacobian.reshape(shape)

    def _directions(self, v, points):
        directions = self._point(v, "v")
        if directions.shape != points.shape:
            raise ValueError(f"v must have the shape of x: got {directions.shape[0]} "
                             f"direction(s) of {directions.shape[1]} "
                             f"for {points.shape[0]} point(s) of {points.shape[1]}")
        return directions

    def _run(self, points, batched, want_jacobian, values_out=None, jacobian_out=None):
        values, jacobian, _, _ = self._run_all(points, batched, None, values_out=values_out,
                                               want_jacobian=want_jacobian,
                                               jacobian_out=jacobian_out)
        return values, jacobian

    def _run_all(self, points, batched, directions, values_out=None, want_jacobian=False,
                 jacobian_out=None, want_tangents=False, want_hvp=False):
        """Replay at the points; a point whose guards fail takes the slow path."""
        k, m, n = points.shape[0], self.n_outputs, self._n
        values = values_out if values_out is not None else np.empty((k, m))
        jacobian = None
        if want_jacobian:
            jacobian = jacobian_out if jacobian_out is not None else np.empty((k, m, n))
        if any(out is not None and np.shares_memory(out, points)
               for out in (values_out, jacobian_out)):
            points = points.copy()               # out= is x itself: keep the inputs intact
        tangents = np.empty((k, m)) if want_tangents else None
        hvp = np.empty((k, n)) if want_hvp else None
        outputs = (values, jacobian, tangents, hvp)
        ok = np.empty(k, dtype=np.uint8)
        failed = self._replay.run(points, directions, *outputs, ok)
        self.slow_points = failed
        if failed:
            # Points on another branch: first the replay recorded for the last such
            # point, then, where that fails too, a new recording at the point.
            # (With BranchChanged, out= arrays keep the values replay wrote.)
            failing = self._failing(points, batched, ok)
            if batched and self._alternate is not None:
                failing = self._run_subset(self._alternate, failing, points, directions,
                                           outputs, must_hold=False)
            while failing.size:
                replay = self._record_branch(points[failing[0]])
                self._run_subset(replay, failing[:1], points, directions, outputs,
                                 must_hold=True)
                failing = self._run_subset(replay, failing[1:], points, directions, outputs,
                                           must_hold=False)
                if batched:
                    self._alternate = replay
                else:
                    self._replay = replay        # follow the branch the caller is in now
        return values, jacobian, tangents, hvp

    def _record_branch(self, point):
        replay, scalar_output = self._record(point)
        self.retapes += 1
        if replay.n_outputs != self.n_outputs or scalar_output != self._scalar_output:
            raise TypeError(
                f"the recorded function returns a different number of outputs on another "
                f"branch ({replay.n_outputs} instead of {self.n_outputs}); a recorded "
                "function must always return the same shape")
        return replay

    @staticmethod
    def _run_subset(replay, indices, points, directions, outputs, must_hold):
        """Run ``replay`` at points[indices], writing their rows of ``outputs``;
        return the indices whose guards failed on it."""
        indices = np.asarray(indices, dtype=np.intp)
        subset = [None if out is None else np.empty_like(out[indices]) for out in outputs]
        ok = np.empty(indices.size, dtype=np.uint8)
        replay.run(np.ascontiguousarray(points[indices]),
                   None if directions is None else np.ascontiguousarray(directions[indices]),
                   *subset, ok)
        if must_hold and not ok.all():
            raise RuntimeError("the function took a different branch when recorded again at "
                               "the same point: its comparisons depend on something other "
                               "than its argument (randomness, global state?)")
        done = ok.astype(bool)
        for out, part in zip(outputs, subset):
            if out is not None:
                out[indices[done]] = part[done]
        return indices[~done]

    def _run_lanes(self, point, want_tangents=False, want_hvp=False):
        """Run n lanes at one point, lane j along the unit direction e_j."""
        if self._replay.first_failed_guard(point) >= 0:
            self._failing(point[None, :], False, np.zeros(1, dtype=np.uint8))
            self._replay = self._record_branch(point)
        lanes = np.ascontiguousarray(np.broadcast_to(point, (self._n, self._n)))
        return self._run_all(lanes, True, np.eye(self._n), want_tangents=want_tangents,
                             want_hvp=want_hvp)

    def _failing(self, points, batched, ok):
        """Indices of the points whose guards failed; raises BranchChanged when
        recording again is impossible or not allowed."""
        failing = np.flatnonzero(ok == 0)
        if self._fun is None or not self._retape:
            where = ("a point" if not batched
                     else f"{failing.size} of {points.shape[0]} points, the first at index "
                          f"{failing[0]}")
            guard = self._replay.first_failed_guard(points[failing[0]])
            reason = ("the recorded function is not available (loaded from a file or "
                      "unpickled)" if self._fun is None else "retape=False")
            raise BranchChanged(
                f"the recorded branch does not hold at {where}: "
                f"{self._replay.describe_guard(guard)}; cannot record again because {reason}")
        return failing

    # -- pickle and files ------------------------------------------------------------

    def __getstate__(self):
        try:
            pickle.dumps(self._fun)
            fun = self._fun
        except Exception:  # noqa: BLE001 - any failure means: do not keep fun
            fun = None
        return {"arrays": self._replay.arrays(), "fun": fun, "retape": self._retape,
                "scalar_input": self._scalar_input, "scalar_output": self._scalar_output,
                "retapes": self.retapes}

    def __setstate__(self, state):
        arrays = state["arrays"]
        self._replay = Replay(*(arrays[name] for name in REPLAY_ARRAYS))
        self._fun = state["fun"]
        self._retape = state["retape"]
        self._scalar_input = state["scalar_input"]
        self._scalar_output = state["scalar_output"]
        self._n = self._replay.n_inputs
        self._alternate = None
        self.retapes = state["retapes"]
        self.slow_points = 0
        self._fast = self._scalar_output and not self._scalar_input

    def save(self, path):
        """Write the recorded tape to a numpy ``.npz`` file (no pickles inside).

        ``wengert.load`` reads it back; the function itself is not saved, so a
        loaded function raises ``BranchChanged`` where a guard fails.
        """
        meta = np.array([FILE_FORMAT, self._scalar_input, self._scalar_output], dtype=np.int64)
        np.savez(path, meta=meta, **self._replay.arrays())


def load(path):
    """Load a recorded function saved by ``RecordedFunction.save``.

    The file is read with ``allow_pickle=False`` and every array is validated
    (op codes, operand indices, lengths, dtypes, inputs, outputs, guards), so a
    file from a stranger cannot crash the interpreter or read out of bounds.

    Raises:
        ValueError: the file is not a valid wengert recording.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ("meta",) + REPLAY_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f"not a readable wengert recording: {error}") from None
    except Exception as error:  # noqa: BLE001 - zipfile/zlib raise many kinds of errors
        raise ValueError(f"not a readable wengert recording: {error!r}") from None
    meta = arrays.pop("meta")
    if meta.dtype != np.int64 or meta.shape != (3,) or meta[0] != FILE_FORMAT \
            or meta[1] not in (0, 1) or meta[2] not in (0, 1):
        raise ValueError("not a wengert recording of a known format (bad meta array)")
    replay = Replay(*(arrays[name] for name in REPLAY_ARRAYS))     # validates
    if meta[1] and replay.n_inputs != 1:
        raise ValueError("a scalar-input recording must have exactly one input")
    if meta[2] and replay.n_outputs != 1:
        raise ValueError("a scalar-output recording must have exactly one output")
    function = RecordedFunction.__new__(RecordedFunction)
    function.__setstate__({"arrays": replay.arrays(), "fun": None, "retape": False,
                           "scalar_input": bool(meta[1]), "scalar_output": bool(meta[2]),
                           "retapes": 0})
    return function


# -- helpers -----------------------------------------------------------------------

def _is_scalar(output):
    return isinstance(output, (Var, numbers.Real)) or (
        isinstance(output, np.ndarray) and output.ndim == 0)


def _output_items(output):
    if isinstance(output, np.ndarray):
        return list(output.ravel())
    try:
        return list(output)
    except TypeError:
        raise TypeError("expected fun to return a scalar or a sequence of scalars, "
                        f"got {type(output).__name__}") from None


def _output_row(tape, item):
    if isinstance(item, np.ndarray):
        item = item[()]
    if isinstance(item, Var) and item.tape is tape:
        return item.index
    if isinstance(item, (Var, numbers.Real)):
        # Independent of the inputs (a number, or a variable of another tape): a constant.
        return tape.constant(float(item)).index
    raise TypeError(f"record expects scalar outputs, got {type(item).__name__}")


def _checked_out(out, shape, what):
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 \
            or not out.flags.c_contiguous or not out.flags.writeable or out.shape != shape:
        raise ValueError(f"out for the {what} must be a writeable C-contiguous float64 array of "
                         f"shape {shape}, got "
                         + (f"shape {out.shape} and dtype {out.dtype}"
                            if isinstance(out, np.ndarray) else type(out).__name__))
    return out


def _values_view(out, points, m, shape):
    if out is None:
        return None
    return _checked_out(out, shape, "values").reshape(points.shape[0], m)


def _jacobian_view(out, points, m, n, shape):
    if out is None:
        return None
    return _checked_out(out, shape, "gradient").reshape(points.shape[0], m, n)
