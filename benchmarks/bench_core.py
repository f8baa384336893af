"""pytest-benchmark suites over the standard workloads (``wengert.workloads``).

Four groups, each timing one callable with its setup outside the timer:

* ``record``: running the workload on fresh input variables (for plain
  floats: evaluating it);
* ``reverse``: the backward sweep over an already recorded graph;
* ``end-to-end``: creating the inputs, recording and the backward sweep;
* ``replay``: one call returning value and gradient of an already recorded
  or compiled function (``wengert-replay``, ``jax-jit``, ``casadi``, ...).

Engines: every adapter of ``python -m wengert bench`` (``wengert._bench.ENGINES``),
the same code on the same footing; optional ones (torch, autograd, jax, casadi,
micrograd) are skipped when not installed, and every engine where the workload
needs a function it lacks, is over its size limit, or is too deep for its
recursion.  ``benchmarks/bench_replay.py`` has the replay batch sizes.

Run:
    python -m pytest benchmarks --benchmark-only
    python -m pytest benchmarks --benchmark-only --benchmark-group-by=group,param:workload
"""

import pytest

from wengert import _bench
from wengert.workloads import FLOAT_MATH, WORKLOADS

ENGINE_NAMES = list(_bench.ENGINES)

# The reference engine and micrograd need seconds per evaluation of chain-1m:
# too slow for a suite; python -m wengert bench measures them.
TOO_SLOW = {("reference", "chain-1m"), ("micrograd", "chain-1m")}


def _rounds(workload, engine):
    """Enough rounds for a stable median without spending minutes on big workloads.

    Engines with a size limit (torch, autograd, jax, casadi) take microseconds
    to milliseconds per op: 5 rounds.
    """
    if engine.max_ops is not None:
        return 5
    return max(5, min(100, 200_000 // workload.ops))


def _engine(name, workload):
    """The adapter for ``name``, or a skip saying why it does not run ``workload``."""
    try:
        engine = _bench.ENGINES[name]()
    except ImportError as error:
        pytest.skip(f"{name} is not installed ({error})")
    reason = engine.unsupported_reason(workload)
    if reason:
        pytest.skip(f"{workload.name} unsupported: {reason}")
    if (name, workload.name) in TOO_SLOW:
        pytest.skip(f"{name} on {workload.name} is too slow for the suite")
    return engine


def _check(engine, workload):
    """Runs once untimed; checks the value against plain floats, skips on recursion limits."""
    if engine.replays:
        engine.prepare(workload)  # record or compile, untimed
    inputs = engine.create_inputs(workload.x0)
    output = engine.forward(workload, inputs)
    try:
        engine.backward(inputs, output)
    except RecursionError:
        pytest.skip(f"{engine.name}: RecursionError, the graph of {workload.ops:,} ops "
                    "is too deep for its recursive traversal")
    expected = workload.f(list(workload.x0), FLOAT_MATH)
    assert engine.value(output) == pytest.approx(expected, rel=1e-12)


def _note_ops(benchmark, workload):
    benchmark.extra_info["ops"] = workload.ops
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None when benchmarks are disabled
        benchmark.extra_info["median_ns_per_op"] = stats.stats.median * 1e9 / workload.ops


@pytest.fixture(params=list(WORKLOADS), ids=str)
def workload(request):
    return WORKLOADS[request.param]


EAGER = [name for name in ENGINE_NAMES if not _bench.ENGINES[name].replays]
REPLAY = [name for name in ENGINE_NAMES if _bench.ENGINES[name].replays]


@pytest.mark.parametrize("engine_name", EAGER)
def test_record(benchmark, workload, engine_name):
    engine = _engine(engine_name, workload)
    _check(engine, workload)
    benchmark.group = "record"

    def setup():
        return (engine.create_inputs(workload.x0),), {}

    def record(inputs):
        return engine.forward(workload, inputs)

    benchmark.pedantic(record, setup=setup, rounds=_rounds(workload, engine), warmup_rounds=1)
    _note_ops(benchmark, workload)


@pytest.mark.parametrize("engine_name", [n for n in EAGER if n != "floats"])
def test_reverse(benchmark, workload, engine_name):
    engine = _engine(engine_name, workload)
    _check(engine, workload)
    benchmark.group = "reverse"

    def setup():
        # A fresh recording each round: micrograd's backward accumulates.
        inputs = engine.create_inputs(workload.x0)
        return (inputs, engine.forward(workload, inputs)), {}

    benchmark.pedantic(engine.backward, setup=setup, rounds=_rounds(workload, engine),
                       warmup_rounds=1)
    _note_ops(benchmark, workload)


@pytest.mark.parametrize("engine_name", EAGER)
def test_end_to_end(benchmark, workload, engine_name):
    engine = _engine(engine_name, workload)
    _check(engine, workload)
    benchmark.group = "end-to-end"

    def end_to_end():
        inputs = engine.create_inputs(workload.x0)
        output = engine.forward(workload, inputs)
        engine.backward(inputs, output)
        return output

    benchmark.pedantic(end_to_end, rounds=_rounds(workload, engine), warmup_rounds=1)
    _note_ops(benchmark, workload)


@pytest.mark.parametrize("engine_name", REPLAY)
def test_replay(benchmark, workload, engine_name):
    engine = _engine(engine_name, workload)
    _check(engine, workload)
    benchmark.group = "replay"
    inputs = engine.create_inputs(workload.x0)
    benchmark.pedantic(engine.forward, args=(workload, inputs),
                       rounds=_rounds(workload, engine), warmup_rounds=1)
    _note_ops(benchmark, workload)
