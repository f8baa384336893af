"""pytest-benchmark suites for record/replay (``wengert.record``).

Two groups, each timing one callable with its setup outside the timer:

* ``replay``: value and gradient at a point of an already recorded or
  compiled function: wengert's ``F.value_and_grad(x)`` for one point and for
  batches of k = 1, 16, 256 and 4096 points; eager ``wengert.value_and_grad``
  (recording + backward each call); and, when installed, a CasADi SX
  ``Function`` returning value and gradient (batched with ``Function.map``)
  and JAX's ``jit(value_and_grad)`` (batched with ``jit(vmap(...))``);
* ``record-for-replay``: ``wengert.record(f, x0)`` next to plain eager
  recording of the same code (``Tape()``, ``tape.variables(x0)``, ``f``).

Workloads: Rosenbrock with n = 10, 100, 1,000 and the MLP.  Every batch is k
copies of x0 with small distinct perturbations, and every engine's values and
gradients are cross-checked against wengert's eager engine before timing.
``extra_info`` carries rows (``len(F)``), points and ns per row per point.

Run:
    python -m pytest benchmarks/bench_replay.py --benchmark-only \\
        --benchmark-group-by=group,param:workload
"""

import numpy as np
import pytest

import wengert as wg
from wengert import workloads as _workloads
from wengert.workloads import WORKLOADS

WORKLOAD_NAMES = ["rosenbrock-10", "rosenbrock-100", "rosenbrock-1000", "mlp"]
BATCH_SIZES = [1, 16, 256, 4096]

# One 4096-point call on the MLP is 4096 x 22,000 rows (~0.5 s) and CasADi's
# map on it is slower: keep the suite short.
TOO_SLOW = {("mlp", 4096)}
# XLA compile time of the unrolled scalar graph: rosenbrock-1000 ~45 s (and
# its vmap again), the MLP did not finish in 5 minutes.
JAX_TOO_SLOW = {"rosenbrock-1000": "XLA compile of 7,991 unrolled scalar ops takes ~45 s",
                "mlp": "XLA compile of the 20,575-op unrolled MLP did not finish in 5 minutes"}

TOLERANCE = 1e-9


def _rounds(workload, points=1):
    return max(5, min(200, 2_000_000 // (workload.ops * points)))


def _points(workload, k):
    """k points near x0, each distinct (so a batch is not one point repeated)."""
    x0 = np.array(workload.x0, dtype=np.float64)
    offsets = 1e-3 * np.sin(np.arange(k * x0.size, dtype=np.float64)).reshape(k, x0.size)
    return x0 + offsets


def _eager(workload, points):
    """wengert's eager value and gradient at each point: the oracle."""
    value_and_grad = wg.value_and_grad(lambda x: workload.f(x, wg))
    pairs = [value_and_grad(point) for point in points]
    return np.array([v for v, _ in pairs]), np.array([g for _, g in pairs])


def _assert_close(values, gradients, expected_values, expected_gradients):
    values = np.asarray(values, dtype=np.float64).reshape(expected_values.shape)
    gradients = np.asarray(gradients, dtype=np.float64).reshape(expected_gradients.shape)
    scale = np.abs(expected_values).max()
    assert np.abs(values - expected_values).max() <= TOLERANCE * scale
    scale = np.abs(expected_gradients).max()
    assert np.abs(gradients - expected_gradients).max() <= TOLERANCE * scale


def _note(benchmark, rows, points):
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["points"] = points
    stats = getattr(benchmark, "stats", None)
    if stats is not None and rows:  # None when benchmarks are disabled
        benchmark.extra_info["median_ns_per_row_per_point"] = (
            stats.stats.median * 1e9 / rows / points)


def _recorded(workload):
    return wg.record(lambda x: workload.f(x, wg), np.array(workload.x0, dtype=np.float64))


@pytest.fixture(params=WORKLOAD_NAMES, ids=str)
def workload(request):
    return WORKLOADS[request.param]


# -- wengert -------------------------------------------------------------------------

def test_replay_single(benchmark, workload):
    benchmark.group = "replay"
    recorded = _recorded(workload)
    [point] = _points(workload, 1)
    value, gradient = recorded.value_and_grad(point)
    _assert_close(value, gradient, *_eager(workload, [point]))
    benchmark.pedantic(recorded.value_and_grad, args=(point,),
                       rounds=_rounds(workload), iterations=10, warmup_rounds=1)
    _note(benchmark, len(recorded), 1)


@pytest.mark.parametrize("k", BATCH_SIZES)
def test_replay_batch(benchmark, workload, k):
    if (workload.name, k) in TOO_SLOW:
        pytest.skip(f"{k} points on {workload.name} is too slow for the suite")
    benchmark.group = "replay"
    recorded = _recorded(workload)
    points = _points(workload, k)
    values, gradients = recorded.value_and_grad(points)
    check = slice(0, k, max(1, k // 8))  # a few points: the eager oracle is slow
    _assert_close(values[check], gradients[check], *_eager(workload, points[check]))
    benchmark.pedantic(recorded.value_and_grad, args=(points,),
                       rounds=_rounds(workload, k), warmup_rounds=1)
    _note(benchmark, len(recorded), k)


def test_eager_value_and_grad(benchmark, workload):
    """Recording + backward on every call: what replay saves."""
    benchmark.group = "replay"
    value_and_grad = wg.value_and_grad(lambda x: workload.f(x, wg))
    [point] = _points(workload, 1)
    benchmark.pedantic(value_and_grad, args=(point,), rounds=_rounds(workload),
                       warmup_rounds=1)
    _note(benchmark, len(_recorded(workload)), 1)


# -- CasADi ----------------------------------------------------------------------------

def _casadi_function(workload):
    casadi = pytest.importorskip("casadi")
    namespace = _workloads.casadi_math()
    n = len(workload.x0)
    x = casadi.SX.sym("x", n)
    y = workload.f([x[i] for i in range(n)], namespace)
    return casadi, casadi.Function("f", [x], [y, casadi.gradient(y, x)])


def test_casadi_single(benchmark, workload):
    benchmark.group = "replay"
    casadi, function = _casadi_function(workload)
    [point] = _points(workload, 1)
    dm = casadi.DM(point)
    value, gradient = function(dm)
    _assert_close(float(value), np.asarray(gradient).ravel(), *_eager(workload, [point]))
    benchmark.pedantic(function, args=(dm,), rounds=_rounds(workload), iterations=10,
                       warmup_rounds=1)
    _note(benchmark, len(_recorded(workload)), 1)


@pytest.mark.parametrize("k", BATCH_SIZES)
def test_casadi_batch(benchmark, workload, k):
    if (workload.name, k) in TOO_SLOW:
        pytest.skip(f"{k} points on {workload.name} is too slow for the suite")
    benchmark.group = "replay"
    casadi, function = _casadi_function(workload)
    mapped = function.map(k)  # serial evaluation of k points, columns in and out
    points = _points(workload, k)
    dm = casadi.DM(points.T)
    values, gradients = mapped(dm)
    check = slice(0, k, max(1, k // 8))
    _assert_close(np.asarray(values).ravel()[check], np.asarray(gradients).T[check],
                  *_eager(workload, points[check]))
    benchmark.pedantic(mapped, args=(dm,), rounds=_rounds(workload, k), warmup_rounds=1)
    _note(benchmark, len(_recorded(workload)), k)


# -- JAX -------------------------------------------------------------------------------

def _jax_function(workload):
    jax = pytest.importorskip("jax")
    if workload.name in JAX_TOO_SLOW:
        pytest.skip(f"jax on {workload.name}: {JAX_TOO_SLOW[workload.name]}")
    jax.config.update("jax_enable_x64", True)
    namespace = _workloads.jax_math()
    return jax, jax.value_and_grad(lambda x: workload.f(x, namespace))


def test_jax_single(benchmark, workload):
    benchmark.group = "replay"
    jax, value_and_grad = _jax_function(workload)
    function = jax.jit(value_and_grad)
    [point] = _points(workload, 1)
    array = jax.numpy.asarray(point)
    value, gradient = jax.block_until_ready(function(array))  # compiles
    _assert_close(float(value), np.asarray(gradient), *_eager(workload, [point]))
    benchmark.pedantic(lambda: jax.block_until_ready(function(array)),
                       rounds=_rounds(workload), iterations=10, warmup_rounds=1)
    _note(benchmark, len(_recorded(workload)), 1)


@pytest.mark.parametrize("k", BATCH_SIZES)
def test_jax_batch(benchmark, workload, k):
    if (workload.name, k) in TOO_SLOW:
        pytest.skip(f"{k} points on {workload.name} is too slow for the suite")
    benchmark.group = "replay"
    jax, value_and_grad = _jax_function(workload)
    function = jax.jit(jax.vmap(value_and_grad))
    points = _points(workload, k)
    array = jax.numpy.asarray(points)
    values, gradients = jax.block_until_ready(function(array))  # compiles
    check = slice(0, k, max(1, k // 8))
    _assert_close(np.asarray(values)[check], np.asarray(gradients)[check],
                  *_eager(workload, points[check]))
    benchmark.pedantic(lambda: jax.block_until_ready(function(array)),
                       rounds=_rounds(workload, k), warmup_rounds=1)
    _note(benchmark, len(_recorded(workload)), k)


# -- recording ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["record-for-replay", "eager"])
def test_record_for_replay(benchmark, workload, how):
    benchmark.group = "record-for-replay"
    point = np.array(workload.x0, dtype=np.float64)

    def record_for_replay():
        return wg.record(lambda x: workload.f(x, wg), point)

    def record_eagerly():
        tape = wg.Tape()
        variables = tape.variables(point)
        with tape:
            return workload.f(variables, wg)

    benchmark.pedantic(record_for_replay if how == "record-for-replay" else record_eagerly,
                       rounds=_rounds(workload), warmup_rounds=1)
    benchmark.extra_info["ops"] = workload.ops
