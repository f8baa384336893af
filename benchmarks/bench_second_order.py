"""pytest-benchmark suite for forward mode and second order on a recorded tape.

Groups, each timing one callable with its setup (recording, compiling) outside
the timer:

* ``second-order``: on one recorded function ``F`` and one point, the gradient
  replay ``F.value_and_grad(x)`` (the unit of cost), ``F.jvp(x, v)``,
  ``F.hvp(x, v)`` and ``F.hessian(x)``; and, when installed, JAX's
  ``jit(jvp(grad(f)))`` (a Hessian-vector product) and ``jit(hessian(f))``, and
  CasADi SX Functions from ``casadi.jtimes`` (Hessian times v) and
  ``casadi.hessian``.  A Hessian is timed in the form each engine returns
  it (``hessian``: wengert's dense ndarray, CasADi's ``DM``) and converted to
  what a Python user works with (``hessian-numpy``: a dense ndarray from
  ``F.hessian(x)`` and ``DM.full()``; ``hessian-scipy``: a
  ``scipy.sparse.csr_array`` from ``F.hessian(x, sparse=True)`` and
  ``DM.sparse()``).
  ``extra_info`` holds n, rows and, for wengert, the cost as a multiple of a
  gradient replay measured in the same run (``vs_gradient``).

Workloads: Rosenbrock with n = 10, 100, 1,000 and the MLP.  Every peer's
result is checked against wengert's before it is timed.

Run:
    python -m pytest benchmarks/bench_second_order.py --benchmark-only \\
        --benchmark-group-by=group,param:workload
"""

import functools
import time

import numpy as np
import pytest

import wengert as wg
from wengert import workloads as _workloads
from wengert.workloads import WORKLOADS

WORKLOAD_NAMES = ["rosenbrock-10", "rosenbrock-100", "rosenbrock-1000", "mlp"]
# XLA compiles the unrolled scalar graph: minutes beyond a few thousand ops.
JAX_TOO_SLOW = {"rosenbrock-1000", "mlp"}
HESSIAN_FORMS = ["hessian", "hessian-numpy", "hessian-scipy"]


def _recorded(name):
    workload = WORKLOADS[name]
    x = np.array(workload.x0, dtype=np.float64)
    F = wg.record(lambda v: workload.f(v, wg), x)
    direction = np.cos(np.arange(x.size, dtype=np.float64))
    return workload, F, x, direction


def _calls_per_round(call):
    """How many calls fill about 1 ms: a call of a few microseconds, timed alone,
    is lost in the timer's resolution and in each round's noise (one call per
    round read 10.7 and 14.5 us for the same Hessian in one run)."""
    call()
    start = time.perf_counter()
    call()
    return max(1, min(1000, int(1e-3 / max(time.perf_counter() - start, 1e-7))))


def _timed(benchmark, call, rounds):
    benchmark.pedantic(call, rounds=rounds, iterations=_calls_per_round(call), warmup_rounds=1)


def _gradient_seconds(F, x, rounds=30):
    """One gradient replay's time, the best round's mean, measured like the rest."""
    calls = _calls_per_round(lambda: F.value_and_grad(x))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            F.value_and_grad(x)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


@pytest.mark.parametrize("workload", WORKLOAD_NAMES)
@pytest.mark.parametrize("method", ["value_and_grad", "jvp", "hvp", *HESSIAN_FORMS])
def test_wengert(benchmark, workload, method):
    benchmark.group = "second-order"
    _, F, x, v = _recorded(workload)
    call = {"value_and_grad": lambda: F.value_and_grad(x), "jvp": lambda: F.jvp(x, v),
            "hvp": lambda: F.hvp(x, v), "hessian": lambda: F.hessian(x),
            # wengert's own form is already a numpy array: the same call, timed again
            # so each form has a row next to CasADi's.
            "hessian-numpy": lambda: F.hessian(x),
            "hessian-scipy": lambda: F.hessian(x, sparse=True)}[method]
    if method == "hessian-scipy":
        pytest.importorskip("scipy")
        np.testing.assert_array_equal(call().toarray(), F.hessian(x))
    _timed(benchmark, call, 5 if method.startswith("hessian") and x.size >= 300 else 50)
    benchmark.extra_info.update(n=x.size, rows=len(F))
    if benchmark.stats is not None:  # None with --benchmark-disable
        benchmark.extra_info["vs_gradient"] = round(
            benchmark.stats.stats.min / _gradient_seconds(F, x), 2)


@pytest.mark.parametrize("workload", WORKLOAD_NAMES)
@pytest.mark.parametrize("method", ["hvp", "hessian"])
def test_jax(benchmark, workload, method):
    jax = pytest.importorskip("jax")
    if workload in JAX_TOO_SLOW:
        pytest.skip("XLA compile of the unrolled scalar graph takes minutes")
    jax.config.update("jax_enable_x64", True)
    benchmark.group = "second-order"
    spec, F, x, v = _recorded(workload)
    math = _workloads.jax_math()

    def f(w):
        return spec.f(w, math)

    if method == "hvp":
        compiled = jax.jit(lambda w, d: jax.jvp(jax.grad(f), (w,), (d,))[1])
        expected = F.hvp(x, v)
        args = (x, v)
    else:
        compiled = jax.jit(jax.hessian(f))
        expected = F.hessian(x)
        args = (x,)
    np.testing.assert_allclose(np.asarray(compiled(*args)), expected, rtol=1e-9, atol=1e-9)
    _timed(benchmark, lambda: compiled(*args).block_until_ready(), 50)
    benchmark.extra_info.update(n=x.size)


@functools.cache
def _casadi_function(workload, method):
    """The CasADi SX Function for ``method``, built once per session (the MLP's
    symbolic Hessian takes about 15 s to build)."""
    import casadi

    size = len(WORKLOADS[workload].x0)
    symbols = casadi.SX.sym("x", size)
    output = WORKLOADS[workload].f([symbols[i] for i in range(size)],
                                   _workloads.casadi_math())
    if method == "hvp":
        direction = casadi.SX.sym("v", size)
        return casadi.Function("hvp", [symbols, direction], [casadi.jtimes(
            casadi.gradient(output, symbols), symbols, direction)])
    return casadi.Function("hessian", [symbols], [casadi.hessian(output, symbols)[0]])


@pytest.mark.parametrize("workload", WORKLOAD_NAMES)
@pytest.mark.parametrize("method", ["hvp", *HESSIAN_FORMS])
def test_casadi(benchmark, workload, method):
    casadi = pytest.importorskip("casadi")
    benchmark.group = "second-order"
    _, F, x, v = _recorded(workload)
    function = _casadi_function(workload, "hvp" if method == "hvp" else "hessian")
    if method == "hvp":
        args = (casadi.DM(x), casadi.DM(v))
        expected = F.hvp(x, v)
    else:
        args = (casadi.DM(x),)
        expected = F.hessian(x)
    np.testing.assert_allclose(np.array(function(*args)).reshape(expected.shape), expected,
                               rtol=1e-9, atol=1e-9)
    call = {"hvp": lambda: function(*args), "hessian": lambda: function(*args),
            "hessian-numpy": lambda: function(*args).full(),
            "hessian-scipy": lambda: function(*args).sparse()}[method]
    _timed(benchmark, call, 5 if method.startswith("hessian") and x.size >= 300 else 50)
    benchmark.extra_info.update(n=x.size)
