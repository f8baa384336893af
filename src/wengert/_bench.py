"""``python -m wengert bench``: the built-in engine adapters and the measuring machinery.

The adapter protocol is public, in :mod:`wengert.bench`; this module holds the
adapters for the engines wengert knows (``ENGINES``), the timing, the
per-cell subprocesses and the report (table, JSON, plot).  It may change
between releases; ``wengert.bench`` does not.

Methodology, for each (engine, workload) cell:

1. The cell runs in a fresh Python process with a timeout, so a crash, a hang
   or a leak costs one cell, and no engine inherits another's warm caches,
   allocations or imported modules.
2. In that process the plain-float evaluation of the workload (the floor) is
   timed beside the engine, their repeats alternating; every ratio is to that
   floor.
3. Before any time is taken, the engine's value is checked against plain
   floats and its gradient against wengert's and the pure-Python reference
   engine's (two independent implementations).  A mismatch is reported
   loudly, the times are marked, and the exit status is 1.
4. A ``RecursionError`` (micrograd's recursive topological sort past ~1,000
   nodes) is retried once with ``sys.setrecursionlimit`` raised, on a thread
   with a large stack, and the table says so.  Any other exception is
   reported as the cell's failure, with the reason.
5. Timing: one warm-up evaluation (also the calibration), then at least 5
   repeats, each running the workload often enough to last at least 100 ms
   (``--quick``: 20 ms); the repeat with the median total is reported, so
   record + backward = total exactly.  Making the inputs and freeing the
   previous graph happen outside the timed region; the garbage collector stays
   on, as users run it.

Replay engines (``wengert-replay``, ``wengert-replay-batch``, ``jax-jit``,
``jax-vmap``, ``casadi``) prepare once per workload, untimed (``wengert.record``,
``jax.jit`` compile, the CasADi SX build), and then one timed call returns
value and gradient: they fill the "replay" column.  Batched engines evaluate
``BATCH_POINTS`` points per call and report times per point.
"""

import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import types
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata

import numpy as np

from wengert import workloads as _workloads
from wengert.bench import (
    TOLERANCE,
    Engine,
    compare,
    expected_results,
    load_engine,
    relative_error,
    run_once,
)

__all__ = ["DEFAULT_ENGINES", "ENGINES", "FULL", "QUICK", "Result", "Settings", "main",
           "measure", "run"]

# Points per call of the batched engines.
BATCH_POINTS = 256

# A RecursionError is retried on a thread with this much stack.
DEEP_STACK_BYTES = 512 * 1024 * 1024

SCHEMA = "wengert-bench/2"


@dataclass(frozen=True)
class Settings:
    """How hard to measure.

    Attributes:
        repeats: timed repeats per measurement (the median is reported).
        repeats_when_slow: repeats when one evaluation takes longer than
            ``slow_seconds`` (still at least 5, so the median means something).
        slow_seconds: see ``repeats_when_slow``.
        min_repeat_seconds: each repeat runs the workload often enough to
            last at least this long, so short workloads are not timer noise.
        timeout_seconds: a cell (one engine on one workload, in its own
            process) taking longer is stopped and reported as a timeout.
        max_evaluation_seconds: an engine whose checked evaluation takes
            longer is not timed, and reported as skipped (``--quick``'s budget);
            None: no limit.
    """

    repeats: int
    repeats_when_slow: int
    slow_seconds: float
    min_repeat_seconds: float
    timeout_seconds: float = 300.0
    max_evaluation_seconds: float | None = None


FULL = Settings(repeats=7, repeats_when_slow=5, slow_seconds=0.5,
                min_repeat_seconds=0.1, timeout_seconds=300.0)
QUICK = Settings(repeats=5, repeats_when_slow=5, slow_seconds=0.1,
                 min_repeat_seconds=0.02, timeout_seconds=60.0,
                 max_evaluation_seconds=0.5)


def _version(distribution):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------
# Engine adapters
# ---------------------------------------------------------------------------

class FloatEngine(Engine):
    """Plain Python floats: the forward evaluation only, the floor."""

    name = "floats"
    math = _workloads.FLOAT_MATH
    has_backward = False
    third_party = False

    def create_inputs(self, x0):
        return list(x0)

    def backward(self, inputs, output):
        pass

    def value(self, output):
        return float(output)

    def gradient(self, inputs, output):
        return None

    def version(self):
        return platform.python_version()


@dataclass
class Recording:
    """A tape and its input variables, as a tape engine's ``create_inputs`` makes them."""

    tape: object
    variables: list


class _OutputBackward:
    """For engines whose backward pass is ``output.backward()``, as users call it:
    the harness times that bound method alone (``Engine.backward_call``)."""

    def backward(self, inputs, output):
        output.backward()

    def backward_call(self, inputs, output):
        return output.backward


class TapeEngine(_OutputBackward, Engine):
    """An engine with wengert's API: ``Tape``, ``tape.variables``, ``tape.backward``."""

    third_party = False

    def __init__(self, name, namespace):
        self.name = name
        self.math = namespace

    def create_inputs(self, x0):
        tape = self.math.Tape()
        return Recording(tape, tape.variables(x0))

    def forward(self, workload, inputs):
        with inputs.tape:
            return workload.f(inputs.variables, self.math)

    def value(self, output):
        return output.value

    def gradient(self, inputs, output):
        return [variable.grad for variable in inputs.variables]

    def version(self):
        return _version("wengert")


class WengertEngine(TapeEngine):
    """The compiled engine, eager: record on a tape, then the reverse sweep."""

    def __init__(self):
        super().__init__("wengert", _workloads.wengert_math())

    def gradient(self, inputs, output):
        return [float(g) for g in inputs.tape.gradient(output, inputs.variables)]


class ReferenceEngine(TapeEngine):
    """The pure-Python reference engine, ``wengert.reference``."""

    def __init__(self):
        super().__init__("reference", _workloads.reference_math())


class MicrogradEngine(_OutputBackward, Engine):
    """micrograd's ``Value`` (``pip install micrograd``)."""

    name = "micrograd"
    install = "pip install 'wengert[bench]' (micrograd)"

    def __init__(self):
        from micrograd.engine import Value  # ImportError when not installed

        self.value_type = Value
        self.math = _workloads.micrograd_math()

    def create_inputs(self, x0):
        return [self.value_type(x) for x in x0]

    def value(self, output):
        return float(output.data)

    def gradient(self, inputs, output):
        return [float(value.grad) for value in inputs]

    def version(self):
        return _version("micrograd")


def _point(workload):
    return np.array(workload.x0, dtype=np.float64)


class ReplayEngine(Engine):
    """``F = wengert.record(f, x0)`` once, then ``F.value_and_grad(x)``: replay in C."""

    name = "wengert-replay"
    replays = True
    third_party = False

    def __init__(self):
        self.math = _workloads.wengert_math()

    def prepare(self, workload):
        namespace = self.math
        self.recorded = namespace.record(lambda x: workload.f(x, namespace), _point(workload))
        self.inputs = self._inputs(workload)

    def _inputs(self, workload):
        return _point(workload)

    def rows(self):
        return len(self.recorded)

    def create_inputs(self, x0):
        return self.inputs  # made in prepare: x0 is always the workload's

    def forward(self, workload, inputs):
        return self.recorded.value_and_grad(inputs)

    def backward(self, inputs, output):
        pass

    def value(self, output):
        return float(output[0])

    def gradient(self, inputs, output):
        return [float(g) for g in output[1]]

    def version(self):
        return _version("wengert")


def _same_point_value(values):
    """The value of a batch of identical points; NaN when they disagree (a mismatch)."""
    values = np.asarray(values).ravel()
    return float(values[0]) if (values == values[0]).all() else math.nan


def _same_point_gradient(gradients):
    """The gradient of a batch (points x inputs) of identical points; NaNs when they disagree."""
    gradients = np.asarray(gradients)
    if not (gradients == gradients[0]).all():
        return [math.nan] * gradients.shape[1]
    return [float(g) for g in gradients[0]]


class BatchReplayEngine(ReplayEngine):
    """``F.value_and_grad(X)`` on ``BATCH_POINTS`` copies of x0: batched replay in C."""

    name = "wengert-replay-batch"
    points = BATCH_POINTS
    # Above this many ops x points, one call takes seconds (chain-1m: 4e6 x 256).
    max_batch_ops = 50_000_000

    def unsupported_reason(self, workload):
        if workload.ops * self.points > self.max_batch_ops:
            return (f"{self.points} points x {workload.ops:,} ops per call is over "
                    f"{self.max_batch_ops:,}: too slow for the benchmark")
        return None

    def _inputs(self, workload):
        return np.tile(_point(workload), (self.points, 1))

    def value(self, output):
        return _same_point_value(output[0])

    def gradient(self, inputs, output):
        return _same_point_gradient(output[1])


class TorchEngine(_OutputBackward, Engine):
    """PyTorch eager autograd on 0-d float64 tensors (``pip install torch``)."""

    name = "torch"
    install = "pip install torch (optional, large)"
    # About 20 us per op forward + backward: chain-1m would take 80 s per evaluation.
    max_ops = 200_000

    def __init__(self):
        import torch  # ImportError when not installed

        self.torch = torch
        self.math = torch

    def create_inputs(self, x0):
        torch = self.torch
        return [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in x0]

    def value(self, output):
        return float(output.item())

    def gradient(self, inputs, output):
        return [0.0 if x.grad is None else float(x.grad.item()) for x in inputs]

    def version(self):
        return self.torch.__version__


class AutogradEngine(Engine):
    """HIPS autograd (``pip install autograd``): ``make_vjp``, then the vjp of 1.0.

    The inputs are one float64 array, indexed by the workload, as autograd's
    users write scalar code over ``autograd.numpy``.
    """

    name = "autograd"
    install = "pip install 'wengert[bench]' (autograd)"
    # About 50 us per op: chain-1m would take minutes per evaluation.
    max_ops = 200_000

    def __init__(self):
        import autograd  # ImportError when not installed
        import autograd.numpy

        self.make_vjp = autograd.make_vjp
        self.math = autograd.numpy

    def create_inputs(self, x0):
        return types.SimpleNamespace(x=np.array(x0, dtype=np.float64), gradient=None)

    def forward(self, workload, inputs):
        namespace = self.math
        return self.make_vjp(lambda x: workload.f(x, namespace))(inputs.x)  # (vjp, value)

    def backward(self, inputs, output):
        inputs.gradient = output[0](1.0)

    def value(self, output):
        return float(output[1])

    def gradient(self, inputs, output):
        return [float(g) for g in inputs.gradient]

    def version(self):
        return _version("autograd")


class _JaxEngine(Engine):
    install = "pip install jax (optional, large)"

    def __init__(self):
        import jax  # ImportError when not installed

        jax.config.update("jax_enable_x64", True)  # float64, as every other engine
        self.jax = jax
        self.math = _workloads.jax_math()

    def version(self):
        return _version("jax")


class JaxEagerEngine(_JaxEngine):
    """JAX without ``jit``: ``jax.vjp`` runs op by op, then the vjp of 1.0."""

    name = "jax"
    # Each eager scalar op costs about 1 ms: rosenbrock-1000 would take 8 s
    # per evaluation.
    max_ops = 1_000

    def create_inputs(self, x0):
        jnp = self.jax.numpy
        return types.SimpleNamespace(x=[jnp.float64(x) for x in x0], gradient=None)

    def forward(self, workload, inputs):
        namespace = self.math
        return self.jax.vjp(lambda x: workload.f(x, namespace), inputs.x)  # (value, vjp)

    def backward(self, inputs, output):
        [inputs.gradient] = output[1](self.jax.numpy.float64(1.0))
        self.jax.block_until_ready(inputs.gradient)

    def value(self, output):
        return float(output[0])

    def gradient(self, inputs, output):
        return [float(g) for g in inputs.gradient]


class JaxJitEngine(_JaxEngine):
    """JAX: ``jax.jit(jax.value_and_grad(f))`` in float64, compiled once."""

    name = "jax-jit"
    replays = True
    # XLA compile time of the unrolled scalar graph grows fast: rosenbrock-100
    # (791 ops) about 2 s, rosenbrock-1000 (7,991 ops) about 45 s, the MLP
    # (20,575 ops) did not finish in 5 minutes.
    max_ops = 2_000

    def unsupported_reason(self, workload):
        reason = super().unsupported_reason(workload)
        if reason and workload.ops > self.max_ops:
            return (f"XLA compiles the unrolled graph of {workload.ops:,} scalar ops too "
                    f"slowly (limit {self.max_ops:,}; rosenbrock-1000 takes ~45 s, the MLP "
                    "did not finish in 5 minutes)")
        return reason

    def _compile(self, function):
        return self.jax.jit(function)

    def _inputs(self, workload):
        return self.jax.numpy.asarray(workload.x0, dtype=self.jax.numpy.float64)

    def prepare(self, workload):
        jax, f, namespace = self.jax, workload.f, self.math
        self.function = self._compile(jax.value_and_grad(lambda x: f(x, namespace)))
        self.inputs = self._inputs(workload)
        jax.block_until_ready(self.function(self.inputs))  # trace and compile, untimed

    def create_inputs(self, x0):
        return self.inputs

    def forward(self, workload, inputs):
        return self.jax.block_until_ready(self.function(inputs))

    def backward(self, inputs, output):
        pass

    def value(self, output):
        return float(output[0])

    def gradient(self, inputs, output):
        return [float(g) for g in np.asarray(output[1])]


class JaxVmapEngine(JaxJitEngine):
    """JAX: ``jax.jit(jax.vmap(jax.value_and_grad(f)))`` on ``BATCH_POINTS`` copies of x0."""

    name = "jax-vmap"
    points = BATCH_POINTS

    def _compile(self, function):
        return self.jax.jit(self.jax.vmap(function))

    def _inputs(self, workload):
        return self.jax.numpy.asarray(np.tile(_point(workload), (self.points, 1)))

    def value(self, output):
        return _same_point_value(output[0])

    def gradient(self, inputs, output):
        return _same_point_gradient(output[1])


class CasadiEngine(Engine):
    """CasADi (``pip install casadi``): an SX ``Function`` returning value and gradient."""

    name = "casadi"
    replays = True
    install = "pip install casadi (optional)"
    # Building the SX graph and its gradient takes about 0.1 ms per op (fanout: 0.8 s).
    max_ops = 100_000

    def __init__(self):
        import casadi  # ImportError when not installed

        self.casadi = casadi
        self.math = _workloads.casadi_math()

    def prepare(self, workload):
        casadi = self.casadi
        n = len(workload.x0)
        x = casadi.SX.sym("x", n)
        y = workload.f([x[i] for i in range(n)], self.math)
        self.function = casadi.Function("f", [x], [y, casadi.gradient(y, x)])
        self.inputs = casadi.DM(list(workload.x0))  # converted once, as replay's array

    def create_inputs(self, x0):
        return self.inputs

    def forward(self, workload, inputs):
        return self.function(inputs)

    def backward(self, inputs, output):
        pass

    def value(self, output):
        return float(output[0])

    def gradient(self, inputs, output):
        return [float(g) for g in np.asarray(output[1]).ravel()]

    def version(self):
        return _version("casadi")


ENGINES = {
    "floats": FloatEngine,
    "wengert": WengertEngine,
    "wengert-replay": ReplayEngine,
    "wengert-replay-batch": BatchReplayEngine,
    "reference": ReferenceEngine,
    "micrograd": MicrogradEngine,
    "torch": TorchEngine,
    "autograd": AutogradEngine,
    "jax": JaxEagerEngine,
    "jax-jit": JaxJitEngine,
    "jax-vmap": JaxVmapEngine,
    "casadi": CasadiEngine,
}
"""Every built-in engine by name; optional ones are skipped when not installed."""

DEFAULT_ENGINES = tuple(ENGINES)


def make_engine(name):
    """An engine instance: a built-in name or a user's ``module:Class``.

    Raises:
        ImportError: the engine's library (or the user's module) is missing.
        ValueError: an unknown name.
    """
    if name in ENGINES:
        return ENGINES[name]()
    if ":" in name:
        return load_engine(name)()
    raise ValueError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)} "
                     "or give module:Class")


# ---------------------------------------------------------------------------
# Measuring one cell
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """One engine on one workload; times are nanoseconds per elementary op.

    An eager engine fills ``record_ns_per_op`` (the forward pass, recording),
    ``backward_ns_per_op`` and ``total_ns_per_op``; a replay engine fills
    ``replay_ns_per_op`` (one call returning value and gradient) and
    ``prepare_seconds`` (its one untimed ``wengert.record``, compile or
    build).  ``ns_per_op`` is whichever of total and replay applies, and
    ``floor_ns_per_op`` the plain-float evaluation timed in the same process,
    its repeats alternating with the engine's.  For a batched engine every time is per point.
    """

    workload: str
    engine: str
    ops: int
    status: str  # "ok", "mismatch", "unsupported", "skipped", "failed" or "timeout"
    reason: str = ""
    note: str = ""  # e.g. the recursion limit was raised
    record_ns_per_op: float | None = None
    backward_ns_per_op: float | None = None
    total_ns_per_op: float | None = None
    replay_ns_per_op: float | None = None
    ns_per_op: float | None = None
    seconds_per_evaluation: float | None = None  # per point
    floor_ns_per_op: float | None = None
    ratio_to_floor: float | None = None
    points: int = 1
    rows: int | None = None  # rows of the recorded tape (wengert-replay engines)
    ns_per_row: float | None = None
    prepare_seconds: float | None = None
    repeats: int = 0
    evaluations_per_repeat: int = 0
    raw_repeats_ns: list = field(default_factory=list)  # [record, backward] per evaluation
    floor_raw_repeats_ns: list = field(default_factory=list)
    value_error: float | None = None
    gradient_errors: dict = field(default_factory=dict)  # oracle -> relative error
    recursion_limit: int | None = None  # set when raised for a retry
    cell_seconds: float | None = None
    extras: dict = field(default_factory=dict)

    @property
    def timed(self):
        return self.ns_per_op is not None


def _time_once(engine, workload, backward):
    """One timed evaluation; returns (record_ns, backward_ns).

    ``backward``: whether to run and time the engine's backward pass, decided by
    the caller so that the timed region holds only the engine's own calls.
    """
    clock = time.perf_counter_ns            # looked up outside the timed regions
    inputs = engine.create_inputs(workload.x0)
    start = clock()
    output = engine.forward(workload, inputs)
    recorded = clock()
    backward_ns, run = 0, None
    if backward:
        run = engine.backward_call(inputs, output)
        begun = clock()
        run()
        backward_ns = clock() - begun
    # Free the graph here (run may hold it too), outside the timed region of the next
    # evaluation.
    del inputs, output, run
    return recorded - start, backward_ns


def _calibrate(engine, workload, settings):
    """A warm-up evaluation, timed to choose ``(evaluations per repeat, repeats)``."""
    record, backward = _time_once(engine, workload, _times_backward(engine))
    one = max(record + backward, 1)
    number = max(1, math.ceil(settings.min_repeat_seconds * 1e9 / one))
    repeats = (settings.repeats_when_slow if one > settings.slow_seconds * 1e9
               else settings.repeats)
    return number, repeats


def _times_backward(engine):
    return engine.has_backward and not engine.replays


def _repeat(engine, workload, number):
    """One repeat: ``[record, backward]`` ns per evaluation, averaged over ``number``."""
    has_backward = _times_backward(engine)
    record_sum = backward_sum = 0
    for _ in range(number):
        record, backward = _time_once(engine, workload, has_backward)
        record_sum += record
        backward_sum += backward
    return [record_sum / number, backward_sum / number]


def _median_repeat(raw):
    """The repeat with the median total (the lower one for an even count).

    Taken whole, so record + backward = total exactly: medians taken column by
    column need not add up when a garbage collection lands in the recording of
    one repeat and in the backward of another.
    """
    by_total = sorted(raw, key=lambda split: split[0] + split[1])
    return by_total[(len(by_total) - 1) // 2]


def _time(engine, workload, settings, floor=None):
    """Times ``engine`` on ``workload``, and ``floor`` (plain floats) beside it.

    With a ``floor``, the two engines' repeats alternate (floor, engine, floor,
    ...), so a machine that changes speed every few seconds, as shared VMs
    do, slows both alike and their ratio stays meaningful.

    Returns:
        ``(record_ns, backward_ns, raw, number, floor_raw)``: the per-evaluation
        times of the median repeat, every repeat's ``[record, backward]``, the
        evaluations per repeat, and the floor's repeats (empty without one).
    """
    number, repeats = _calibrate(engine, workload, settings)
    floor_number = _calibrate(floor, workload, settings)[0] if floor is not None else 0
    raw, floor_raw = [], []
    for _ in range(repeats):
        if floor is not None:
            floor_raw.append(_repeat(floor, workload, floor_number))
        raw.append(_repeat(engine, workload, number))
    record, backward = _median_repeat(raw)
    return record, backward, raw, number, floor_raw


def _on_deep_stack(function, limit):
    """Runs ``function()`` with the recursion limit raised, on a thread with a big stack."""
    outcome = {}

    def target():
        sys.setrecursionlimit(limit)
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 (re-raised in the caller's thread)
            outcome["error"] = error

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    threading.stack_size(DEEP_STACK_BYTES)
    try:
        thread = threading.Thread(target=target, name="deep-recursion")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _check_and_time(engine, workload, settings, expected_value, expected_gradients, result,
                    floor):
    if engine.replays:
        start = time.perf_counter()
        engine.prepare(workload)
        result.prepare_seconds = time.perf_counter() - start
        result.rows = engine.rows()
    start = time.perf_counter()
    value, gradient = run_once(engine, workload)
    seconds = time.perf_counter() - start
    result.value_error = relative_error([value], [expected_value])
    if gradient is not None:
        result.gradient_errors = {
            oracle: relative_error(gradient, expected)
            for oracle, expected in expected_gradients.items() if oracle != engine.name}
    problems = compare(engine.name, value, gradient, expected_value, expected_gradients)
    if problems:
        result.status, result.reason = "mismatch", "; ".join(problems)
    elif settings.max_evaluation_seconds and seconds > settings.max_evaluation_seconds:
        raise _TooSlow(f"checked, but one evaluation takes {seconds:.1f} s, over the "
                       f"{settings.max_evaluation_seconds:g} s budget of --quick")
    return _time(engine, workload, settings, floor)


class _TooSlow(Exception):
    """An engine is too slow for the settings' budget: not timed, reported as skipped."""


def measure(engine, workload, settings, expected_value, expected_gradients, floor=True):
    """Checks ``engine`` on ``workload`` against the expected results, then times it.

    Args:
        engine: an ``Engine``.
        workload: a ``Workload``.
        settings: ``FULL``, ``QUICK`` or your own ``Settings``.
        expected_value: plain floats' value.
        expected_gradients: ``{oracle name: gradient}``, e.g. wengert's and
            the reference engine's (``wengert.bench.expected_results``).
        floor: time plain floats too, in this process, repeats alternating with
            the engine's, for the ratio.

    Returns:
        A ``Result``.  Exceptions from the engine become ``status="failed"``
        with the reason; a ``RecursionError`` is first retried once with the
        recursion limit raised (``result.note`` says so).
    """
    result = Result(workload=workload.name, engine=engine.name, ops=workload.ops,
                    status="ok", points=engine.points)
    reason = engine.unsupported_reason(workload)
    if reason:
        result.status, result.reason = "unsupported", reason
        return result
    floor_engine = FloatEngine() if floor and not isinstance(engine, FloatEngine) else None

    def attempt():
        return _check_and_time(engine, workload, settings, expected_value,
                               expected_gradients, result, floor_engine)

    try:
        try:
            record, backward, raw, number, floor_raw = attempt()
        except RecursionError:
            default = sys.getrecursionlimit()
            limit = max(100_000, 20 * workload.ops)
            result.status, result.reason = "ok", ""
            record, backward, raw, number, floor_raw = _on_deep_stack(attempt, limit)
            result.recursion_limit = limit
            result.note = (f"RecursionError at the default recursion limit ({default:,}); "
                           f"retried with sys.setrecursionlimit({limit:,})")
    except _TooSlow as reason:
        result.status, result.reason = "skipped", str(reason)
        return result
    except RecursionError:
        result.status = "failed"
        result.reason = (f"RecursionError, the graph of {workload.ops:,} ops is too deep "
                         f"for {engine.name}'s recursive traversal, even with the "
                         "recursion limit raised")
        return result
    except Exception as error:  # noqa: BLE001 (a broken engine is reported, the run goes on)
        result.status = "failed"
        result.reason = f"{type(error).__name__}: {error}"
        return result
    points, ops = engine.points, workload.ops
    if floor_raw:
        result.floor_ns_per_op = _median_repeat(floor_raw)[0] / ops
        result.floor_raw_repeats_ns = floor_raw
    total = (record + backward) / points
    if engine.replays:
        result.replay_ns_per_op = total / ops
    else:
        result.record_ns_per_op = record / points / ops
        if engine.has_backward:
            result.backward_ns_per_op = backward / points / ops
        result.total_ns_per_op = total / ops
    result.ns_per_op = total / ops
    result.seconds_per_evaluation = total / 1e9
    if result.floor_ns_per_op:
        result.ratio_to_floor = result.ns_per_op / result.floor_ns_per_op
    if result.rows:
        result.ns_per_row = total / result.rows
    result.repeats, result.evaluations_per_repeat = len(raw), number
    result.raw_repeats_ns = raw
    return result


def _median_ns(function, settings):
    """The median time of one call of ``function()`` in ns."""
    start = time.perf_counter_ns()
    function()  # warm-up and calibration
    one = max(time.perf_counter_ns() - start, 1)
    number = max(1, math.ceil(settings.min_repeat_seconds * 1e9 / one))
    times = []
    for _ in range(settings.repeats):
        start = time.perf_counter_ns()
        for _ in range(number):
            function()
        times.append((time.perf_counter_ns() - start) / number)
    return sorted(times)[(len(times) - 1) // 2]


def replay_extras(workload, settings):
    """For the replay section: a replay call's fixed cost, and ``record`` vs eager recording.

    Returns:
        A dict: ``overhead_seconds`` (one ``F.value_and_grad(x)`` on a 2-row
        recording), ``record_seconds`` (``wengert.record(f, x0)``),
        ``eager_record_seconds`` (``Tape()``, ``tape.variables(x0)``, ``f``)
        and their ratio.
    """
    import wengert

    tiny = wengert.record(lambda x: x[0] * 2.0, np.zeros(1))
    one = np.ones(1)
    point = _point(workload)

    def record_for_replay():
        return wengert.record(lambda x: workload.f(x, wengert), point)

    def record_eagerly():
        tape = wengert.Tape()
        variables = tape.variables(point)
        with tape:
            return workload.f(variables, wengert)

    overhead_ns = _median_ns(lambda: tiny.value_and_grad(one), settings)
    record_ns = _median_ns(record_for_replay, settings)
    eager_ns = _median_ns(record_eagerly, settings)
    return {"overhead_seconds": overhead_ns / 1e9, "record_seconds": record_ns / 1e9,
            "eager_record_seconds": eager_ns / 1e9, "record_over_eager": record_ns / eager_ns}


def measure_cell(spec):
    """Measures one cell described by ``spec`` (a JSON-ready dict); returns a Result dict.

    ``spec`` holds ``engine`` (a built-in name or ``module:Class``),
    ``workload``, ``settings``, ``expected_value`` and ``expected_gradients``.
    """
    start = time.perf_counter()
    workload = _workloads.get_workload(spec["workload"])
    settings = Settings(**spec["settings"])
    engine = make_engine(spec["engine"])
    result = measure(engine, workload, settings, spec["expected_value"],
                     spec["expected_gradients"])
    if result.timed and isinstance(engine, ReplayEngine) and engine.points == 1:
        result.extras = replay_extras(workload, settings)
    result.cell_seconds = time.perf_counter() - start
    return asdict(result)


def cell_main():
    """The body of a cell's subprocess: a spec on stdin, the result in ``spec["out"]``."""
    spec = json.load(sys.stdin)
    for entry in spec.get("sys_path", []):  # find the user's engine modules as the parent did
        if entry not in sys.path:
            sys.path.append(entry)
    result = measure_cell(spec)
    with open(spec["out"], "w", encoding="utf-8") as file:
        json.dump(result, file)


def _failed(spec, status, reason, seconds):
    workload = _workloads.get_workload(spec["workload"])
    result = Result(workload=workload.name, engine=spec["name"], ops=workload.ops,
                    status=status, reason=reason, cell_seconds=seconds)
    return asdict(result)


def run_cell_in_subprocess(spec):
    """Runs one cell in a fresh Python process with the settings' timeout; returns a dict."""
    timeout = spec["settings"]["timeout_seconds"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wengert-bench-") as folder:
        spec = dict(spec, out=os.path.join(folder, "result.json"), sys_path=sys.path)
        try:
            completed = subprocess.run(
                [sys.executable, "-c", "from wengert._bench import cell_main; cell_main()"],
                input=json.dumps(spec), capture_output=True, text=True, timeout=timeout,
                check=False)
        except subprocess.TimeoutExpired:
            return _failed(spec, "timeout", f"stopped after the {timeout:g} s timeout",
                           time.perf_counter() - start)
        seconds = time.perf_counter() - start
        if completed.returncode == 0 and os.path.exists(spec["out"]):
            with open(spec["out"], encoding="utf-8") as file:
                return json.load(file)
    lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "no output"
    code = completed.returncode
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    return _failed(spec, "failed", f"the cell's process crashed ({how}): {last}", seconds)


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------

def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine():
    """The machine, for the report."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "python_implementation": platform.python_implementation()}


class Progress:
    """One line per cell on stderr (redrawn in place on a terminal)."""

    def __init__(self, total, stream=None):
        self.total, self.done = total, 0
        self.stream = sys.stderr if stream is None else stream
        self.live = getattr(self.stream, "isatty", lambda: False)()
        self.started = time.perf_counter()

    def start(self, workload, engine):
        self.done += 1
        text = (f"[{self.done:>3}/{self.total}] {time.perf_counter() - self.started:6.0f} s  "
                f"{workload} x {engine} ...")
        if self.live:
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
        else:
            self._text = text

    def finish(self, result):
        status = result["status"]
        seconds = result.get("cell_seconds")
        tail = f" {status}" + (f" ({seconds:.1f} s)" if seconds is not None else "")
        if self.live:
            self.stream.write(tail)
            self.stream.flush()
        else:
            print(self._text + tail, file=self.stream, flush=True)

    def close(self):
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()


def run(workload_names, engine_names, settings, out=None, isolate=True, progress=None):
    """Runs the benchmark, prints the table to ``out`` and returns the report.

    Args:
        workload_names: names from ``wengert.workloads.WORKLOADS``.
        engine_names: built-in names from ``ENGINES`` or ``module:Class``.
        settings: ``FULL``, ``QUICK`` or your own ``Settings``.
        out: where the table goes (default: stdout).
        isolate: run each cell in its own subprocess (False: in this process,
            for tests).
        progress: a stream for the progress display (default: stderr), or
            False for none.

    Returns:
        A JSON-ready dict (see ``SCHEMA``): versions, machine, settings,
        skipped engines and one entry per (workload, engine) with raw repeats.
    """
    out = sys.stdout if out is None else out
    engines, skipped, versions = [], {}, {}
    for name in engine_names:
        try:
            engine = make_engine(name)
        except ImportError as error:
            install = getattr(ENGINES.get(name), "install", "")
            skipped[name] = f"not installed ({error})" + (f"; {install}" if install else "")
            continue
        engines.append((name, engine))
        versions[engine.name] = engine.version()
    for name, reason in skipped.items():
        print(f"{name}: skipped, {reason}", file=out)

    cells = [(workload_name, name, engine) for workload_name in workload_names
             for name, engine in engines]
    display = None if progress is False else Progress(len(cells), progress)
    results = []
    oracles = {}
    for workload_name, name, engine in cells:
        workload = _workloads.get_workload(workload_name)
        if display:
            display.start(workload_name, engine.name)
        reason = engine.unsupported_reason(workload)
        if reason:
            result = asdict(Result(workload=workload.name, engine=engine.name,
                                   ops=workload.ops, status="unsupported", reason=reason))
        else:
            if workload_name not in oracles:
                oracles[workload_name] = expected_results(workload)
            expected_value, expected_gradients = oracles[workload_name]
            spec = {"engine": name, "name": engine.name, "workload": workload_name,
                    "settings": asdict(settings), "expected_value": expected_value,
                    "expected_gradients": expected_gradients}
            result = (run_cell_in_subprocess(spec) if isolate else measure_cell(spec))
        if display:
            display.finish(result)
        results.append(result)
    if display:
        display.close()

    print_report(results, settings, out)
    return {
        "schema": SCHEMA,
        "versions": {"wengert": _version("wengert"), "python": platform.python_version(),
                     "numpy": np.__version__, "engines": versions},
        "machine": machine(),
        "gc_enabled": gc.isenabled(),
        "settings": dict(asdict(settings), isolated=isolate, batch_points=BATCH_POINTS,
                         tolerance=TOLERANCE),
        "workloads": {name: {"ops": _workloads.get_workload(name).ops,
                             "inputs": len(_workloads.get_workload(name).x0),
                             "description": _workloads.get_workload(name).description}
                      for name in workload_names},
        "skipped_engines": skipped,
        "results": results,
    }


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def _format(number, width=9, digits=1):
    return f"{number:>{width}.{digits}f}" if number is not None else f"{'-':>{width}}"


def _speedup_over_micrograd(result, by_key):
    micrograd = by_key.get((result["workload"], "micrograd"))
    if micrograd is None or not micrograd.get("ns_per_op") or not result.get("ns_per_op"):
        return None
    return micrograd["ns_per_op"] / result["ns_per_op"]


def print_report(results, settings, out):
    """The table, notes, the replay section and the mismatch banner."""
    repeats = (f"{settings.repeats}" if settings.repeats == settings.repeats_when_slow
               else f"{settings.repeats_when_slow} (slow) to {settings.repeats}")
    print(f"wengert {_version('wengert')}, Python {platform.python_version()}, "
          f"{_cpu_name()} ({os.cpu_count()} cores), garbage collector "
          f"{'on' if gc.isenabled() else 'off'}", file=out)
    print(f"ns per elementary op, median of {repeats} repeats of >= "
          f"{settings.min_repeat_seconds * 1e3:g} ms, each cell in a fresh process; "
          "x floats: time / plain floats timed in the same process; "
          "x micrograd: micrograd's time / this engine's", file=out)
    header = (f"{'workload':<16} {'engine':<20} {'ops':>9} {'record':>9} {'backward':>9} "
              f"{'total':>9} {'replay':>9} {'x floats':>9} {'x micrograd':>11}  check")
    print(header, file=out)
    print("-" * len(header), file=out)
    by_key = {(r["workload"], r["engine"]): r for r in results}
    notes = []
    previous = None
    for result in results:
        if previous is not None and result["workload"] != previous:
            print(file=out)
        previous = result["workload"]
        _print_row(result, by_key, out)
        if result.get("note"):
            notes.append(f"{result['engine']} on {result['workload']}: {result['note']}")
    for note in notes:
        print(f"note: {note}", file=out)
    _print_replay(results, out)
    for result in results:
        if result["status"] == "mismatch":
            print(f"!!! MISMATCH: {result['engine']} on {result['workload']}: "
                  f"{result['reason']} (its times are marked !)", file=out)
    out.flush()


def _print_row(result, by_key, out):
    start = f"{result['workload']:<16} {result['engine']:<20} {result['ops']:>9,}"
    if result.get("ns_per_op") is None:
        print(f"{start}  {result['status']}: {result['reason']}", file=out)
        return
    mark = "!" if result["status"] == "mismatch" else ""
    cells = [_format(result[key]) for key in ("record_ns_per_op", "backward_ns_per_op",
                                             "total_ns_per_op", "replay_ns_per_op")]
    if mark:
        cells = [cell if cell.strip() == "-" else mark + cell.strip().rjust(8)
                 for cell in cells]
    ratio = result.get("ratio_to_floor")
    speedup = _speedup_over_micrograd(result, by_key)
    if result["engine"] == "floats":
        check = "(floor)"
        ratio = 1.0
    elif result["status"] == "ok":
        check = "ok"
    else:
        check = f"!!! {result['status'].upper()}: {result['reason']}"
    if result.get("recursion_limit"):
        check += f" (recursion limit raised to {result['recursion_limit']:,})"
    if result.get("points", 1) > 1:
        check += f" (per point, {result['points']} per call)"
    print(f"{start} {' '.join(cells)} "
          + (f"{ratio:>8.1f}x" if ratio is not None else f"{'-':>9}") + " "
          + (f"{speedup:>10.3g}x" if speedup is not None else f"{'-':>11}")
          + f"  {check}", file=out)


# The engines wengert-replay is compared with in the replay section.
REPLAY_PEERS = ("wengert", "jax-jit", "casadi")


def replay_rows(results):
    """Per workload: replay's ns per row, its fixed cost and its speed-ups over the peers."""
    by_key = {(r["workload"], r["engine"]): r for r in results}
    rows = []
    for workload in dict.fromkeys(r["workload"] for r in results):
        single = by_key.get((workload, "wengert-replay"))
        if single is None or not single.get("ns_per_row") or not single.get("extras"):
            continue
        extras = single["extras"]
        batch = by_key.get((workload, "wengert-replay-batch")) or {}
        single_seconds = single["seconds_per_evaluation"]
        row = {"workload": workload, "rows": single["rows"], "ops": single["ops"],
               "single_seconds": single_seconds,
               "single_ns_per_row": single["ns_per_row"],
               "overhead_seconds": extras["overhead_seconds"],
               "single_ns_per_row_after_overhead":
                   (single_seconds - extras["overhead_seconds"]) * 1e9 / single["rows"],
               "batch_ns_per_row_per_point": batch.get("ns_per_row"),
               "record_over_eager_record": extras["record_over_eager"]}
        for peer in REPLAY_PEERS:
            other = by_key.get((workload, peer)) or {}
            row[f"speedup_over_{peer}"] = (other["seconds_per_evaluation"] / single_seconds
                                           if other.get("seconds_per_evaluation") else None)
        rows.append(row)
    return rows


def _print_replay(results, out):
    rows = replay_rows(results)
    if not rows:
        return
    print(file=out)
    print("replay: F = wengert.record(f, x0) once (untimed), then F.value_and_grad(x); "
          f"a call costs about {rows[0]['overhead_seconds'] * 1e9:.0f} ns fixed "
          "(a 2-row recording) + ns per row", file=out)
    print("x peer: the peer's time / replay's time (above 1: replay faster); "
          "wengert is eager recording + backward", file=out)
    header = (f"{'workload':<16} {'rows':>9} {'ns/row':>8} {'-fixed':>8} {'batch/pt':>9} "
              + " ".join(f"{'x ' + peer:>10}" for peer in REPLAY_PEERS)
              + f" {'record/eager':>13}")
    print(header, file=out)
    for row in rows:
        print(f"{row['workload']:<16} {row['rows']:>9,} {row['single_ns_per_row']:>8.2f} "
              f"{row['single_ns_per_row_after_overhead']:>8.2f} "
              f"{_format(row['batch_ns_per_row_per_point'], 9, 2)} "
              + " ".join(_format(row['speedup_over_' + peer], 10, 1) for peer in REPLAY_PEERS)
              + f" {row['record_over_eager_record']:>13.2f}", file=out)
    print(f"(ns/row: one point, all of the call; -fixed: without the fixed cost; "
          f"batch/pt: per point of a {BATCH_POINTS}-point batch; record/eager: "
          "wengert.record(f, x0) / eager recording)", file=out)


def plot(report, path):
    """A PNG bar chart of ns per op (total or replay), log scale, one group per workload.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in report["results"] if r.get("ns_per_op")]
    workloads = list(dict.fromkeys(r["workload"] for r in report["results"]))
    engines = list(dict.fromkeys(r["engine"] for r in report["results"]))
    width = 0.8 / max(1, len(engines))
    figure, axes = plt.subplots(figsize=(11, 4.8), dpi=90)
    colors = plt.get_cmap("tab20")
    for index, engine in enumerate(engines):
        xs, ys = [], []
        for position, workload in enumerate(workloads):
            for r in results:
                if r["engine"] == engine and r["workload"] == workload:
                    xs.append(position - 0.4 + (index + 0.5) * width)
                    ys.append(r["ns_per_op"])
        axes.bar(xs, ys, width=width, label=engine, color=colors(index % 20),
                 hatch="//" if any(r["engine"] == engine and r["status"] == "mismatch"
                                   for r in results) else None)
    axes.set_yscale("log")
    axes.set_xticks(range(len(workloads)))
    axes.set_xticklabels(workloads)
    axes.set_ylabel("ns per elementary op (log scale)")
    machine_info = report.get("machine", {})
    axes.set_title("ns per elementary op for value and gradient (floats: value only; "
                   "lower is better)\n"
                   f"{machine_info.get('cpu')}, {machine_info.get('cpu_count')} cores, "
                   f"Python {machine_info.get('python')}; hatched: gradient mismatch",
                   fontsize=10)
    axes.grid(axis="y", which="major", alpha=0.3)
    axes.legend(ncol=4, fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.08))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def exit_status(report):
    """1 when an engine mismatched, or one of wengert's own engines failed; else 0."""
    own = {name for name, engine in ENGINES.items() if not engine.third_party}
    for result in report["results"]:
        if result["status"] == "mismatch":
            return 1
        if result["status"] in ("failed", "timeout") and result["engine"] in own:
            return 1
    return 0


def main(workload_names, engine_names, quick=False, json_path=None, plot_path=None,
         timeout=None, isolate=True):
    """Entry point for ``python -m wengert bench``; returns the exit status.

    The status is 1 when an engine disagrees with the oracles, or when one of
    wengert's own engines fails; failures of third-party engines (micrograd's
    recursion limit, an engine's crash) are reported but do not change it.
    2 when ``--plot`` is asked for without matplotlib, or a user's engine
    (``module:Class``) cannot be loaded.
    """
    settings = QUICK if quick else FULL
    if timeout is not None:
        settings = Settings(**dict(asdict(settings), timeout_seconds=timeout))
    for name in engine_names:
        if name not in ENGINES:  # a user's module:Class: a typo is an error, not a skip
            try:
                load_engine(name)
            except (ImportError, AttributeError, TypeError, ValueError) as error:
                print(f"cannot load engine {name}: {error}", file=sys.stderr)
                return 2
    if plot_path is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("--plot needs matplotlib: pip install matplotlib "
                  "(or pip install 'wengert[bench]')", file=sys.stderr)
            return 2
    report = run(workload_names, engine_names, settings, isolate=isolate)
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=1)
            file.write("\n")
        print(f"results written to {json_path}")
    if plot_path is not None:
        plot(report, plot_path)
        print(f"plot written to {plot_path}")
    return exit_status(report)


# Fields of Result, for the JSON schema test.
RESULT_FIELDS = tuple(f.name for f in fields(Result))
