"""``python -m wengert bench``: time every engine on the standard workloads.

Each engine is a small adapter object (create inputs, run forward, run
backward, read value and gradient), so adding an engine means adding one
class to ``ENGINES``.  For each workload the plain-float evaluation is timed
first, in the same process, as the floor every engine is compared with; then
each engine's value and gradient are checked against plain floats and
wengert (a mismatch is printed loudly and makes the exit status 1) before its
times are taken.

Replay engines (``wengert-replay``, ``wengert-replay-batch``) and compiled
peers (``casadi``, ``jax``) first prepare once per workload, untimed:
``wengert.record`` the workload, build a CasADi SX ``Function``, or
``jax.jit`` and compile.  Their timed evaluation is one call returning value
and gradient, so their rows have a total and no record/backward split.  A
batched engine evaluates ``BATCH_POINTS`` points per call and reports times
per point.  When ``wengert-replay`` runs, a replay section follows the table:
the fixed cost of a call, ns per tape row (``len(F)``), the speed-ups over
eager recording + backward and over the peers, and the cost of
``wengert.record`` next to plain eager recording.

Timing: each engine's time is the median of at least 5 repeats after one
warm-up run; a repeat runs the workload enough times to last a few
milliseconds and reports the mean per evaluation, split into recording and
backward.  Creating the inputs and
freeing the previous graph happen outside the timed region; the garbage
collector stays on, as users run it.
"""

import gc
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Optional

import numpy as np

from wengert import workloads as _workloads

DEFAULT_ENGINES = ("floats", "wengert", "wengert-replay", "wengert-replay-batch",
                   "reference", "micrograd", "casadi", "jax")

# Points per call of the batched replay engine.
BATCH_POINTS = 256

# A value must match plain floats, and a gradient wengert's, to this relative
# (normwise) error.  All engines run the same operations in the same order,
# so in practice they agree to the last bit or nearly so.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Settings:
    """How hard to measure.

    Attributes:
        repeats: timed repeats per measurement (the median is reported).
        repeats_when_slow: repeats when one evaluation takes longer than
            ``slow_seconds`` (still at least 5, so the median means something).
        slow_seconds: see ``repeats_when_slow``.
        min_repeat_seconds: each repeat runs the workload often enough to
            last at least this long, so short workloads are not all timer noise.
    """

    repeats: int
    repeats_when_slow: int
    slow_seconds: float
    min_repeat_seconds: float


FULL = Settings(repeats=9, repeats_when_slow=5, slow_seconds=0.5,
                min_repeat_seconds=0.05)
QUICK = Settings(repeats=5, repeats_when_slow=5, slow_seconds=0.2,
                 min_repeat_seconds=0.04)


# ---------------------------------------------------------------------------
# Engine adapters
# ---------------------------------------------------------------------------

class Engine:
    """What the benchmark needs from an engine; subclass it to add one.

    Attributes:
        name: the name on the command line and in the table.
        has_backward: False for plain floats, which only evaluate.
        third_party: True when the engine is not part of wengert; its failures
            (micrograd's recursion limit) are reported without failing the run.
        replays: True when ``prepare`` records or compiles the workload and
            ``forward`` then returns value and gradient in one call (there is
            no record/backward split; ``backward`` does nothing).
        points: points evaluated per ``forward``; times are reported per point.
        install: how to install an optional engine.
    """

    name = "engine"
    has_backward = True
    third_party = False
    replays = False
    points = 1
    install = "pip install 'wengert[bench]'"

    def unsupported_reason(self, workload):
        """Why the engine cannot run ``workload`` (a missing function), or None."""
        return None

    def prepare(self, workload):
        """Once per workload, untimed, before checking and timing: record or compile."""

    def rows(self):
        """Rows of the prepared recording (to report ns per row), or None."""
        return None

    def create_inputs(self, x0):
        """The engine's input scalars for the floats ``x0`` (not timed)."""
        raise NotImplementedError

    def forward(self, workload, inputs):
        """Runs ``workload.f`` on ``inputs``, recording; returns the output scalar."""
        raise NotImplementedError

    def backward(self, inputs, output):
        """The reverse sweep from ``output``."""
        raise NotImplementedError

    def value(self, output):
        """The output's value as a float."""
        raise NotImplementedError

    def gradient(self, inputs, output):
        """d output / d inputs as a list of floats, after ``backward``."""
        raise NotImplementedError


class FloatEngine(Engine):
    """Plain Python floats: the forward evaluation only, the floor."""

    name = "floats"
    has_backward = False

    def create_inputs(self, x0):
        return list(x0)

    def forward(self, workload, inputs):
        return workload.f(inputs, _workloads.FLOAT_MATH)

    def backward(self, inputs, output):
        pass

    def value(self, output):
        return float(output)

    def gradient(self, inputs, output):
        return None


@dataclass
class Recording:
    """A tape and its input variables, as a tape engine's ``create_inputs`` makes them."""

    tape: object
    variables: list


class TapeEngine(Engine):
    """An engine with wengert's API: ``Tape``, ``tape.variables``, ``tape.backward``."""

    def __init__(self, name, namespace):
        self.name = name
        self.namespace = namespace

    def unsupported_reason(self, workload):
        missing = workload.missing(self.namespace)
        return f"no {', '.join(missing)}" if missing else None

    def create_inputs(self, x0):
        tape = self.namespace.Tape()
        return Recording(tape, tape.variables(x0))

    def forward(self, workload, inputs):
        with inputs.tape:
            return workload.f(inputs.variables, self.namespace)

    def backward(self, inputs, output):
        inputs.tape.backward(output)

    def value(self, output):
        return output.value

    def gradient(self, inputs, output):
        return [variable.grad for variable in inputs.variables]


class WengertEngine(TapeEngine):
    """The compiled engine."""

    def __init__(self):
        super().__init__("wengert", _workloads.wengert_math())

    def gradient(self, inputs, output):
        return [float(g) for g in inputs.tape.gradient(output, inputs.variables)]


class ReferenceEngine(TapeEngine):
    """The pure-Python reference engine, ``wengert.reference``."""

    def __init__(self):
        super().__init__("reference", _workloads.reference_math())


class MicrogradEngine(Engine):
    """micrograd's ``Value`` (optional; ``pip install micrograd``)."""

    name = "micrograd"
    third_party = True  # its known limits (recursion depth) are reported, not errors

    def __init__(self):
        from micrograd.engine import Value  # ImportError when not installed

        self.value_type = Value
        self.namespace = _workloads.micrograd_math()

    def unsupported_reason(self, workload):
        missing = workload.missing(self.namespace)
        return f"micrograd has no {', '.join(missing)}" if missing else None

    def create_inputs(self, x0):
        return [self.value_type(x) for x in x0]

    def forward(self, workload, inputs):
        return workload.f(inputs, self.namespace)

    def backward(self, inputs, output):
        output.backward()

    def value(self, output):
        return float(output.data)

    def gradient(self, inputs, output):
        return [float(value.grad) for value in inputs]


def _point(workload):
    return np.array(workload.x0, dtype=np.float64)


class ReplayEngine(Engine):
    """``F = wengert.record(f, x0)`` once, then ``F.value_and_grad(x)``: replay in C."""

    name = "wengert-replay"
    replays = True

    def prepare(self, workload):
        namespace = _workloads.wengert_math()
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
        values = output[0]
        # Every point is x0: all must agree, or the check below reports a mismatch.
        return float(values[0]) if (values == values[0]).all() else math.nan

    def gradient(self, inputs, output):
        gradients = output[1]
        if not (gradients == gradients[0]).all():
            return [math.nan] * gradients.shape[1]
        return [float(g) for g in gradients[0]]


class CasadiEngine(Engine):
    """CasADi (optional): an SX ``Function`` returning value and gradient, built once."""

    name = "casadi"
    replays = True
    third_party = True
    install = "pip install casadi"
    # Building the SX graph and its gradient takes about 0.1 ms per op (fanout: 0.8 s).
    max_ops = 100_000

    def __init__(self):
        import casadi  # ImportError when not installed

        self.casadi = casadi
        self.namespace = _workloads.casadi_math()

    def unsupported_reason(self, workload):
        missing = workload.missing(self.namespace)
        if missing:
            return f"casadi has no {', '.join(missing)}"
        if workload.ops > self.max_ops:
            return (f"building the SX graph of {workload.ops:,} ops would take minutes "
                    f"(limit {self.max_ops:,})")
        return None

    def prepare(self, workload):
        casadi = self.casadi
        n = len(workload.x0)
        x = casadi.SX.sym("x", n)
        y = workload.f([x[i] for i in range(n)], self.namespace)
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


class JaxEngine(Engine):
    """JAX (optional): ``jax.jit(jax.value_and_grad(f))`` in float64, compiled once."""

    name = "jax"
    replays = True
    third_party = True
    install = "pip install jax"
    # XLA compile time of the unrolled scalar graph grows fast: rosenbrock-100
    # (791 ops) about 2 s, rosenbrock-1000 (7,991 ops) about 45 s, the MLP
    # (20,575 ops) did not finish in 5 minutes.
    max_ops = 2_000

    def __init__(self):
        import jax  # ImportError when not installed

        jax.config.update("jax_enable_x64", True)  # float64, as every other engine
        self.jax = jax
        self.namespace = _workloads.jax_math()

    def unsupported_reason(self, workload):
        missing = workload.missing(self.namespace)
        if missing:
            return f"jax.numpy has no {', '.join(missing)}"
        if workload.ops > self.max_ops:
            return (f"XLA compiles the unrolled graph of {workload.ops:,} scalar ops too "
                    f"slowly (limit {self.max_ops:,}; rosenbrock-1000 takes ~45 s, the MLP "
                    "did not finish in 5 minutes)")
        return None

    def prepare(self, workload):
        jax, f, namespace = self.jax, workload.f, self.namespace
        self.function = jax.jit(jax.value_and_grad(lambda x: f(x, namespace)))
        self.inputs = jax.numpy.asarray(workload.x0, dtype=jax.numpy.float64)
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


ENGINES = {
    "floats": FloatEngine,
    "wengert": WengertEngine,
    "wengert-replay": ReplayEngine,
    "wengert-replay-batch": BatchReplayEngine,
    "reference": ReferenceEngine,
    "micrograd": MicrogradEngine,
    "casadi": CasadiEngine,
    "jax": JaxEngine,
}


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """One engine on one workload; times are nanoseconds per elementary op.

    For a replay engine ``record_ns_per_op`` and ``backward_ns_per_op`` are
    None (one call does both) and ``prepare_seconds`` is its one untimed
    ``wengert.record`` (or CasADi build, or JAX compile).  For a batched
    engine every time is per point.
    """

    workload: str
    engine: str
    ops: int
    status: str  # "ok", "unsupported", "failed" or "mismatch"
    reason: str = ""
    record_ns_per_op: Optional[float] = None
    backward_ns_per_op: Optional[float] = None
    total_ns_per_op: Optional[float] = None
    total_seconds: Optional[float] = None  # one evaluation (per point), record + backward
    points: int = 1  # points per evaluation
    rows: Optional[int] = None  # rows of the recorded tape (wengert-replay engines)
    total_ns_per_row: Optional[float] = None
    prepare_seconds: Optional[float] = None
    repeats: int = 0
    evaluations_per_repeat: int = 0
    value_error: Optional[float] = None
    gradient_error: Optional[float] = None


def _run_once(engine, workload):
    """One untimed evaluation; returns (value, gradient)."""
    inputs = engine.create_inputs(workload.x0)
    output = engine.forward(workload, inputs)
    engine.backward(inputs, output)
    return engine.value(output), engine.gradient(inputs, output)


def _time_once(engine, workload):
    """One timed evaluation; returns (record_ns, backward_ns)."""
    inputs = engine.create_inputs(workload.x0)
    start = time.perf_counter_ns()
    output = engine.forward(workload, inputs)
    recorded = finished = time.perf_counter_ns()
    if engine.has_backward and not engine.replays:
        engine.backward(inputs, output)
        finished = time.perf_counter_ns()
    # Free the graph here, outside the timed region of the next evaluation.
    del inputs, output
    return recorded - start, finished - recorded


def _time(engine, workload, settings):
    """Times ``engine`` on ``workload``; returns (record_ns, backward_ns, repeats, number).

    The times are per evaluation, from the repeat with the median total, so
    record + backward = total exactly.  (Medians taken column by column need
    not add up: with the garbage collector on, a collection lands in the
    recording of one repeat and in the backward of another.)
    """
    record, backward = _time_once(engine, workload)  # warm-up and calibration
    one = max(record + backward, 1)
    number = max(1, math.ceil(settings.min_repeat_seconds * 1e9 / one))
    repeats = (settings.repeats_when_slow if one > settings.slow_seconds * 1e9
               else settings.repeats)
    splits = []
    for _ in range(repeats):
        record_sum = backward_sum = 0
        for _ in range(number):
            record, backward = _time_once(engine, workload)
            record_sum += record
            backward_sum += backward
        splits.append((record_sum / number, backward_sum / number))
    by_total = sorted(splits, key=lambda split: split[0] + split[1])
    record, backward = by_total[(len(by_total) - 1) // 2]  # the (lower) median repeat
    return record, backward, repeats, number


def _relative_error(actual, expected):
    """Normwise relative error of two equally long lists; inf on NaN or length mismatch."""
    if len(actual) != len(expected):
        return math.inf
    scale = max((abs(e) for e in expected), default=0.0)
    error = 0.0
    for a, e in zip(actual, expected):
        if math.isnan(a) and math.isnan(e):
            continue
        difference = abs(a - e)
        if math.isnan(difference):
            return math.inf
        error = max(error, difference)
    if error == 0.0:
        return 0.0
    return error / scale if scale > 0 else math.inf


def measure(engine, workload, settings, expected_value, expected_gradient):
    """Checks ``engine`` on ``workload`` against the expected results, then times it.

    Returns:
        A ``Result``.  Exceptions from the engine become ``status="failed"``
        with the reason (micrograd's recursive topological sort raises
        ``RecursionError`` on deep graphs).
    """
    result = Result(workload=workload.name, engine=engine.name, ops=workload.ops,
                    status="ok")
    reason = engine.unsupported_reason(workload)
    if reason:
        result.status, result.reason = "unsupported", reason
        return result
    try:
        if engine.replays:
            start = time.perf_counter()
            engine.prepare(workload)
            result.prepare_seconds = time.perf_counter() - start
            result.rows = engine.rows()
        value, gradient = _run_once(engine, workload)
        result.value_error = _relative_error([value], [expected_value])
        if gradient is not None and expected_gradient is not None:
            result.gradient_error = _relative_error(gradient, expected_gradient)
        problems = []
        if result.value_error > TOLERANCE:
            problems.append(f"value off plain floats by {result.value_error:.2g} (relative)")
        if result.gradient_error is not None and result.gradient_error > TOLERANCE:
            problems.append(f"gradient off wengert's by {result.gradient_error:.2g} (relative)")
        if problems:
            result.status, result.reason = "mismatch", "; ".join(problems)
        record, backward, repeats, number = _time(engine, workload, settings)
    except RecursionError:
        result.status = "failed"
        result.reason = (f"RecursionError, the graph of {workload.ops:,} ops is too deep "
                         f"for {engine.name}'s recursive traversal")
        return result
    except Exception as error:  # a benchmark reports a broken engine and goes on
        result.status = "failed"
        result.reason = f"{type(error).__name__}: {error}"
        return result
    points = result.points = engine.points
    total = (record + backward) / points
    if not engine.replays:
        result.record_ns_per_op = record / points / workload.ops
        result.backward_ns_per_op = (backward / points / workload.ops if engine.has_backward
                                     else None)
    result.total_ns_per_op = total / workload.ops
    result.total_seconds = total / 1e9
    if result.rows:
        result.total_ns_per_row = total / result.rows
    result.repeats, result.evaluations_per_repeat = repeats, number
    return result


def _median_ns(function, settings):
    """The median time of one call of ``function()`` in ns, timed as the engines are."""
    start = time.perf_counter_ns()
    function()  # warm-up and calibration
    one = max(time.perf_counter_ns() - start, 1)
    number = max(1, math.ceil(settings.min_repeat_seconds * 1e9 / one))
    repeats = (settings.repeats_when_slow if one > settings.slow_seconds * 1e9
               else settings.repeats)
    times = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(number):
            function()
        times.append((time.perf_counter_ns() - start) / number)
    return sorted(times)[(len(times) - 1) // 2]


def replay_overhead_ns(settings):
    """The fixed cost of one ``F.value_and_grad(x)`` call: a 2-row recording of one input."""
    import wengert

    recorded = wengert.record(lambda x: x[0] * 2.0, np.zeros(1))
    point = np.ones(1)
    return _median_ns(lambda: recorded.value_and_grad(point), settings)


def measure_recording(workload, settings):
    """``wengert.record(f, x0)`` against plain eager recording of the same code.

    Eager recording is what the ``wengert`` engine times plus making its tape
    and input variables: ``Tape()``, ``tape.variables(x0)``, running ``f``.

    Returns:
        A dict with both times in seconds and their ratio.
    """
    import wengert

    point = _point(workload)

    def record_for_replay():
        return wengert.record(lambda x: workload.f(x, wengert), point)

    def record_eagerly():
        tape = wengert.Tape()
        variables = tape.variables(point)
        with tape:
            return workload.f(variables, wengert)

    record_ns = _median_ns(record_for_replay, settings)
    eager_ns = _median_ns(record_eagerly, settings)
    return {"workload": workload.name, "record_seconds": record_ns / 1e9,
            "eager_record_seconds": eager_ns / 1e9, "ratio": record_ns / eager_ns}


def _expected_gradient(workload):
    """wengert's gradient of ``workload`` at ``x0``, the one every engine must match."""
    try:
        return _run_once(WengertEngine(), workload)[1]
    except Exception:  # reported where wengert itself is measured
        return None


def run(workload_names, engine_names, settings, out=None):
    """Runs the benchmark and prints the table to ``out``.

    Args:
        workload_names: names from ``wengert.workloads.WORKLOADS``.
        engine_names: names from ``ENGINES``; the plain-float floor is always
            measured (it is needed for the ratios) but only listed when
            ``"floats"`` is among them.
        settings: ``FULL`` or ``QUICK``.

    Returns:
        A JSON-ready dict with the settings, the environment, one entry per
        (workload, engine) under ``"results"`` and wengert's ratios under
        ``"ratios"``.
    """
    out = sys.stdout if out is None else out
    engines, skipped = [], {}
    for name in engine_names:
        try:
            engines.append(ENGINES[name]())
        except ImportError as error:
            skipped[name] = f"not installed ({error}; {ENGINES[name].install})"
    for name, reason in skipped.items():
        print(f"{name}: skipped, {reason}", file=out)
    floor_engine = FloatEngine()

    repeats = (f"{settings.repeats}" if settings.repeats == settings.repeats_when_slow
               else f"{settings.repeats_when_slow} (slow) to {settings.repeats}")
    print(f"wengert {_version('wengert')}, Python {platform.python_version()}, "
          f"{platform.machine()}, garbage collector "
          f"{'on' if gc.isenabled() else 'off'}; ns per elementary op, median of "
          f"{repeats} repeats", file=out)
    header = (f"{'workload':<16} {'engine':<20} {'ops':>9} {'record':>9} "
              f"{'backward':>9} {'total':>9} {'x floats':>9}  check")
    print(header, file=out)
    print("-" * len(header), file=out)

    names = [engine.name for engine in engines]
    overhead_ns = replay_overhead_ns(settings) if "wengert-replay" in names else None
    results, ratios, recordings = [], [], []
    for workload_name in workload_names:
        workload = _workloads.get_workload(workload_name)
        expected_value = workload.f(list(workload.x0), _workloads.FLOAT_MATH)
        expected_gradient = _expected_gradient(workload)
        floor = measure(floor_engine, workload, settings, expected_value, None)
        by_engine = {"floats": floor}
        for engine in engines:
            if engine.name == "floats":
                result = floor
            else:
                result = measure(engine, workload, settings, expected_value,
                                 expected_gradient)
                by_engine[engine.name] = result
            results.append(result)
            _print_row(result, floor, out)
        ratios.append(_ratios(workload.name, by_engine))
        replay = by_engine.get("wengert-replay")
        if replay is not None and replay.status == "ok":
            recordings.append(measure_recording(workload, settings))
        out.flush()

    _print_ratios(ratios, names, out)
    replay_rows = _replay_rows(results, recordings, overhead_ns)
    _print_replay(replay_rows, recordings, overhead_ns, names, out)
    bad = [r for r in results if r.status == "mismatch"]
    for result in bad:
        print(f"!!! MISMATCH: {result.engine} on {result.workload}: "
              f"{result.reason}", file=out)
    return {
        "wengert_version": _version("wengert"),
        "micrograd_version": _version("micrograd"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "gc_enabled": gc.isenabled(),
        "settings": asdict(settings),
        "skipped_engines": skipped,
        "results": [asdict(result) for result in results],
        "ratios": ratios,
        "replay": {"batch_points": BATCH_POINTS,
                   "overhead_seconds": None if overhead_ns is None else overhead_ns / 1e9,
                   "workloads": replay_rows},
    }


def _version(distribution):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _ratios(workload_name, by_engine):
    """wengert's total time divided by each other engine's (None where missing)."""
    wengert = by_engine.get("wengert")
    ratios = {"workload": workload_name}
    for name, result in by_engine.items():
        if name == "wengert":
            continue
        ratio = None
        if (wengert is not None and wengert.total_ns_per_op is not None
                and result.total_ns_per_op):
            ratio = wengert.total_ns_per_op / result.total_ns_per_op
        ratios[name] = ratio
    return ratios


def _format(number, width=9):
    return f"{number:>{width}.1f}" if number is not None else f"{'-':>{width}}"


def _print_row(result, floor, out):
    if result.total_ns_per_op is None:
        print(f"{result.workload:<16} {result.engine:<20} {result.ops:>9,}  "
              f"{result.status}: {result.reason}", file=out)
        return
    times_floor = (f"{result.total_ns_per_op / floor.total_ns_per_op:>8.1f}x"
                   if floor.total_ns_per_op else f"{'-':>9}")
    check = "ok" if result.status == "ok" else f"!!! {result.status.upper()}: {result.reason}"
    if result.engine == "floats":
        check = "(floor)"
    elif result.points > 1:
        check += f" (per point, {result.points} per call)"
    print(f"{result.workload:<16} {result.engine:<20} {result.ops:>9,} "
          f"{_format(result.record_ns_per_op)} {_format(result.backward_ns_per_op)} "
          f"{_format(result.total_ns_per_op)} {times_floor}  {check}", file=out)


def _print_ratios(ratios, engine_names, out):
    others = ["floats"] + [name for name in engine_names
                           if name not in ("floats", "wengert")]
    if "wengert" not in engine_names:
        return
    print(file=out)
    print("wengert total time / other engine's total time (below 1: wengert faster)",
          file=out)
    widths = [max(13, len(name) + 3) for name in others]
    print(f"{'workload':<16} " + " ".join(f"{'/ ' + name:>{width}}"
                                         for name, width in zip(others, widths)), file=out)
    for row in ratios:
        cells = []
        for name, width in zip(others, widths):
            ratio = row.get(name)
            cells.append(f"{ratio:>{width}.3g}" if ratio is not None else f"{'-':>{width}}")
        print(f"{row['workload']:<16} " + " ".join(cells), file=out)


# The engines wengert-replay is compared with in the replay section.
REPLAY_PEERS = ("wengert", "casadi", "jax")


def _replay_rows(results, recordings, overhead_ns):
    """Per workload: replay's ns per row and its speed-ups, from this run's results."""
    by_key = {(result.workload, result.engine): result for result in results}
    recording_by_workload = {recording["workload"]: recording for recording in recordings}
    rows = []
    for workload in dict.fromkeys(result.workload for result in results):
        single = by_key.get((workload, "wengert-replay"))
        if single is None or single.total_ns_per_row is None:
            continue
        batch = by_key.get((workload, "wengert-replay-batch"))
        single_ns = single.total_seconds * 1e9
        row = {"workload": workload, "rows": single.rows, "ops": single.ops,
               "single_seconds": single.total_seconds,
               "single_ns_per_row": single.total_ns_per_row,
               "single_ns_per_row_after_overhead": (single_ns - overhead_ns) / single.rows,
               "batch_ns_per_row_per_point": (batch.total_ns_per_row
                                              if batch is not None else None),
               "record_over_eager_record": recording_by_workload.get(
                   workload, {}).get("ratio")}
        for peer in REPLAY_PEERS:
            other = by_key.get((workload, peer))
            row[f"speedup_over_{peer}"] = (
                other.total_seconds / single.total_seconds
                if other is not None and other.total_seconds else None)
        rows.append(row)
    return rows


def _print_replay(rows, recordings, overhead_ns, engine_names, out):
    if not rows:
        return
    print(file=out)
    print(f"replay: F = wengert.record(f, x0) once (untimed), then F.value_and_grad(x); "
          f"a call costs {overhead_ns:.0f} ns fixed (a 2-row recording) + ns per row",
          file=out)
    print("x peer: the peer's time / replay's time (above 1: replay faster); "
          "wengert is eager recording + backward", file=out)
    peers = [peer for peer in REPLAY_PEERS if peer in engine_names]
    header = (f"{'workload':<16} {'rows':>9} {'ns/row':>8} {'-fixed':>8} "
              f"{'batch/pt':>9} " + " ".join(f"{'x ' + peer:>10}" for peer in peers))
    print(header, file=out)
    for row in rows:
        print(f"{row['workload']:<16} {row['rows']:>9,} {row['single_ns_per_row']:>8.2f} "
              f"{row['single_ns_per_row_after_overhead']:>8.2f} "
              + (f"{row['batch_ns_per_row_per_point']:>9.2f} "
                 if row["batch_ns_per_row_per_point"] is not None else f"{'-':>9} ")
              + " ".join(f"{row['speedup_over_' + peer]:>10.3g}"
                         if row["speedup_over_" + peer] is not None else f"{'-':>10}"
                         for peer in peers), file=out)
    print(f"(ns/row: one point, all of the call; -fixed: without the fixed cost; "
          f"batch/pt: per point of a {BATCH_POINTS}-point batch)", file=out)
    if recordings:
        print(file=out)
        print("recording for replay: wengert.record(f, x0) vs eager recording "
              "(Tape(), tape.variables(x0), f)", file=out)
        print(f"{'workload':<16} {'record ms':>10} {'eager ms':>10} {'ratio':>7}", file=out)
        for recording in recordings:
            print(f"{recording['workload']:<16} {recording['record_seconds'] * 1e3:>10.3f} "
                  f"{recording['eager_record_seconds'] * 1e3:>10.3f} "
                  f"{recording['ratio']:>7.2f}", file=out)


def main(workload_names, engine_names, quick=False, json_path=None):
    """Entry point for ``python -m wengert bench``; returns the exit status.

    The status is 1 when an engine disagrees with wengert or plain floats, or
    when one of wengert's own engines fails; failures of third-party engines
    (micrograd's recursion limit) are reported but do not change it.
    """
    settings = QUICK if quick else FULL
    report = run(workload_names, engine_names, settings)
    if json_path is not None:
        with open(json_path, "w", encoding="utf-8") as file:
            json.dump(report, file, indent=2)
            file.write("\n")
        print(f"results written to {json_path}")
    third_party = {name for name, engine in ENGINES.items() if engine.third_party}
    for result in report["results"]:
        if result["status"] == "mismatch":
            return 1
        if result["status"] == "failed" and result["engine"] not in third_party:
            return 1
    return 0
