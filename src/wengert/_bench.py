"""``python -m wengert bench``: time every engine on the standard workloads.

Each engine is a small adapter object (create inputs, run forward, run
backward, read value and gradient), so adding an engine means adding one
class to ``ENGINES``.  For each workload the plain-float evaluation is timed
first, in the same process, as the floor every engine is compared with; then
each engine's value and gradient are checked against plain floats and
wengert (a mismatch is printed loudly and makes the exit status 1) before its
times are taken.

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

from wengert import workloads as _workloads

DEFAULT_ENGINES = ("floats", "wengert", "reference", "micrograd")

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
    """

    name = "engine"
    has_backward = True
    third_party = False

    def unsupported_reason(self, workload):
        """Why the engine cannot run ``workload`` (a missing function), or None."""
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


ENGINES = {
    "floats": FloatEngine,
    "wengert": WengertEngine,
    "reference": ReferenceEngine,
    "micrograd": MicrogradEngine,
}


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------

@dataclass
class Result:
    """One engine on one workload; times are nanoseconds per elementary op."""

    workload: str
    engine: str
    ops: int
    status: str  # "ok", "unsupported", "failed" or "mismatch"
    reason: str = ""
    record_ns_per_op: Optional[float] = None
    backward_ns_per_op: Optional[float] = None
    total_ns_per_op: Optional[float] = None
    total_seconds: Optional[float] = None  # one evaluation, record + backward
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
    if engine.has_backward:
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
    result.record_ns_per_op = record / workload.ops
    result.backward_ns_per_op = backward / workload.ops if engine.has_backward else None
    result.total_ns_per_op = (record + backward) / workload.ops
    result.total_seconds = (record + backward) / 1e9
    result.repeats, result.evaluations_per_repeat = repeats, number
    return result


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
            skipped[name] = f"not installed ({error}; pip install 'wengert[bench]')"
    for name, reason in skipped.items():
        print(f"{name}: skipped, {reason}", file=out)
    floor_engine = FloatEngine()

    repeats = (f"{settings.repeats}" if settings.repeats == settings.repeats_when_slow
               else f"{settings.repeats_when_slow} (slow) to {settings.repeats}")
    print(f"wengert {_version('wengert')}, Python {platform.python_version()}, "
          f"{platform.machine()}, garbage collector "
          f"{'on' if gc.isenabled() else 'off'}; ns per elementary op, median of "
          f"{repeats} repeats", file=out)
    header = (f"{'workload':<16} {'engine':<10} {'ops':>9} {'record':>9} "
              f"{'backward':>9} {'total':>9} {'x floats':>9}  check")
    print(header, file=out)
    print("-" * len(header), file=out)

    results, ratios = [], []
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
        out.flush()

    _print_ratios(ratios, [engine.name for engine in engines], out)
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
        print(f"{result.workload:<16} {result.engine:<10} {result.ops:>9,}  "
              f"{result.status}: {result.reason}", file=out)
        return
    times_floor = (f"{result.total_ns_per_op / floor.total_ns_per_op:>8.1f}x"
                   if floor.total_ns_per_op else f"{'-':>9}")
    check = "ok" if result.status == "ok" else f"!!! {result.status.upper()}: {result.reason}"
    if result.engine == "floats":
        check = "(floor)"
    print(f"{result.workload:<16} {result.engine:<10} {result.ops:>9,} "
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
    print(f"{'workload':<16} " + " ".join(f"{'/ ' + name:>13}" for name in others),
          file=out)
    for row in ratios:
        cells = []
        for name in others:
            ratio = row.get(name)
            cells.append(f"{ratio:>13.3g}" if ratio is not None else f"{'-':>13}")
        print(f"{row['workload']:<16} " + " ".join(cells), file=out)


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
