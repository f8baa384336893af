"""The benchmark workloads: op counts, determinism, and agreement across engines."""

import math
import types

import pytest

import wengert
import wengert as wg
from wengert import reference
from wengert.workloads import (
    FLOAT_MATH,
    WORKLOADS,
    Workload,
    casadi_math,
    get_workload,
    jax_math,
    micrograd_math,
    mlp_data,
    reference_math,
    wengert_math,
)

# chain-1m is chain-10k's code run 100 times longer: too slow to count with a
# Python scalar type or to run on the reference engine in the test suite.
FAST_WORKLOADS = [name for name in WORKLOADS if name != "chain-1m"]


class Counted:
    """A float that counts every arithmetic operation and math call made on it."""

    ops = 0

    def __init__(self, value):
        self.value = float(value)

    @classmethod
    def result(cls, value):
        cls.ops += 1
        return cls(value)

    @staticmethod
    def unwrap(x):
        if isinstance(x, Counted):
            return x.value
        if isinstance(x, (int, float)):
            return x
        return NotImplemented

    def _binary(self, other, operation):
        other = Counted.unwrap(other)
        if other is NotImplemented:
            return NotImplemented
        return Counted.result(operation(self.value, other))

    def __add__(self, other):
        return self._binary(other, lambda a, b: a + b)

    def __radd__(self, other):
        return self._binary(other, lambda a, b: b + a)

    def __sub__(self, other):
        return self._binary(other, lambda a, b: a - b)

    def __rsub__(self, other):
        return self._binary(other, lambda a, b: b - a)

    def __mul__(self, other):
        return self._binary(other, lambda a, b: a * b)

    def __rmul__(self, other):
        return self._binary(other, lambda a, b: b * a)

    def __truediv__(self, other):
        return self._binary(other, lambda a, b: a / b)

    def __rtruediv__(self, other):
        return self._binary(other, lambda a, b: b / a)

    def __pow__(self, other):
        return self._binary(other, lambda a, b: a ** b)

    def __rpow__(self, other):
        return self._binary(other, lambda a, b: b ** a)

    def __neg__(self):
        return Counted.result(-self.value)

    def __pos__(self):
        return Counted.result(self.value)


def _counting(function):
    def counted(x):
        return Counted.result(function(x.value))

    return counted


COUNTING_MATH = types.SimpleNamespace(
    **{name: _counting(function) for name, function in vars(FLOAT_MATH).items()}
)


def _relative_close(actual, expected, tolerance=1e-12):
    return abs(actual - expected) <= tolerance * max(abs(expected), 1e-300)


def _record(namespace, workload):
    """Runs ``workload`` on a tape engine (wengert or the reference); returns (value, grads)."""
    with namespace.Tape() as tape:
        inputs = tape.variables(workload.x0)
        output = workload.f(inputs, namespace)
    tape.backward(output)
    return output.value, [variable.grad for variable in inputs]


@pytest.mark.parametrize("name", FAST_WORKLOADS)
def test_op_count_matches_a_counting_scalar(name):
    workload = WORKLOADS[name]
    Counted.ops = 0
    output = workload.f([Counted(x) for x in workload.x0], COUNTING_MATH)
    assert Counted.ops == workload.ops
    # Every operation was on a Counted, none on plain floats: same value as floats.
    assert output.value == workload.f(list(workload.x0), FLOAT_MATH)


def test_chain_1m_is_chain_10k_longer():
    short, long = WORKLOADS["chain-10k"], WORKLOADS["chain-1m"]
    assert (short.ops, long.ops) == (4 * 2_500, 4 * 250_000)      # 4 ops a step
    assert long.x0 == short.x0


def test_chains_have_the_rows_their_names_say_and_a_gradient_near_one():
    workload = WORKLOADS["chain-10k"]
    with wg.Tape() as tape:
        x = tape.variables(workload.x0)
        y = workload.f(x, wg)
        y.backward()
    # 4 rows a step, the input and the two constants (the first step records them,
    # the others reuse their rows)
    assert len(tape) == 3 + 4 * 2_500
    assert tape.to_arrays()["op"].tolist().count(0) == 1 + 2    # CONST: the sentinel and two
    # d y_{k+1} / d y_k = 1 + 0.001 cos(y_k), multiplied along the chain
    ys, derivative = workload.x0[0], 1.0
    for _ in range(2_500):
        derivative *= 1.0 + 0.001 * math.cos(ys)
        ys = ys + 0.001 * math.sin(ys) + 0.01
    assert y.value == pytest.approx(ys, rel=1e-12)
    assert x[0].grad == pytest.approx(derivative, rel=1e-12)
    assert 0.5 < x[0].grad < 2.0


def test_workload_shapes():
    assert [len(WORKLOADS[n].x0) for n in ("rosenbrock-10", "rosenbrock-100", "rosenbrock-1000")] \
        == [10, 100, 1000]
    assert len(WORKLOADS["mlp"].x0) == 337
    assert len(WORKLOADS["fanout"].x0) == 10_002
    for workload in WORKLOADS.values():
        assert all(isinstance(x, float) and math.isfinite(x) for x in workload.x0)


def test_mlp_data_is_deterministic():
    data = mlp_data()
    assert data == mlp_data()
    assert len(data) == 32
    assert {label for _, label in data} == {-1.0, 1.0}


def test_mlp_rejects_wrong_parameter_count():
    with pytest.raises(ValueError, match="337 parameters"):
        WORKLOADS["mlp"].f([0.0] * 10, FLOAT_MATH)


def test_get_workload_names_the_choices():
    assert get_workload("mlp") is WORKLOADS["mlp"]
    with pytest.raises(ValueError, match="rosenbrock-10"):
        get_workload("rosenbrock-7")


def test_namespaces():
    assert wengert_math() is wengert
    assert reference_math() is reference
    assert isinstance(repr(WORKLOADS["mlp"]), str)


def test_supports_checks_the_math_functions_a_workload_calls():
    no_sin = types.SimpleNamespace(tanh=math.tanh)
    assert not WORKLOADS["chain-10k"].supports(no_sin)
    assert WORKLOADS["chain-10k"].missing(no_sin) == ["sin"]
    assert WORKLOADS["mlp"].supports(no_sin)
    assert WORKLOADS["rosenbrock-10"].supports(types.SimpleNamespace())
    for workload in WORKLOADS.values():
        assert workload.supports(FLOAT_MATH)
        assert workload.supports(wengert)
        assert workload.supports(reference)


@pytest.mark.parametrize("name", FAST_WORKLOADS)
def test_engines_agree(name):
    workload = WORKLOADS[name]
    expected = workload.f(list(workload.x0), FLOAT_MATH)
    value, gradient = _record(wengert, workload)
    reference_value, reference_gradient = _record(reference, workload)
    assert _relative_close(value, expected)
    assert _relative_close(reference_value, expected)
    assert len(gradient) == len(reference_gradient) == len(workload.x0)
    scale = max(abs(g) for g in reference_gradient)
    for g, r in zip(gradient, reference_gradient):
        assert abs(g - r) <= 1e-12 * max(scale, 1e-300)


def test_wengert_gradient_helper_agrees_with_grad_attributes():
    workload = WORKLOADS["rosenbrock-100"]
    with wengert.Tape() as tape:
        inputs = tape.variables(workload.x0)
        output = workload.f(inputs, wengert)
    tape.backward(output)
    assert list(tape.gradient(output, inputs)) == [x.grad for x in inputs]


def test_rosenbrock_gradient_closed_form():
    workload = WORKLOADS["rosenbrock-10"]
    x = workload.x0
    n = len(x)
    expected = [0.0] * n
    for i in range(n - 1):
        expected[i] += -400 * x[i] * (x[i + 1] - x[i] ** 2) - 2 * (1 - x[i])
        expected[i + 1] += 200 * (x[i + 1] - x[i] ** 2)
    _, gradient = _record(wengert, workload)
    for g, e in zip(gradient, expected):
        assert _relative_close(g, e, 1e-12) or abs(g - e) < 1e-9


def test_micrograd_agrees_where_it_can():
    pytest.importorskip("micrograd")
    from micrograd.engine import Value

    namespace = micrograd_math()
    workload = WORKLOADS["rosenbrock-100"]
    inputs = [Value(x) for x in workload.x0]
    output = workload.f(inputs, namespace)
    output.backward()
    value, gradient = _record(wengert, workload)
    assert _relative_close(output.data, value)
    for v, g in zip(inputs, gradient):
        assert abs(v.grad - g) <= 1e-12 * max(abs(g), 1.0)
    assert not WORKLOADS["chain-10k"].supports(namespace)  # micrograd has no sin


def _importable(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# casadi is in the test extra; jax is a heavy optional peer, checked where installed.
@pytest.mark.parametrize("module, make_namespace",
                         [("casadi", casadi_math)] + ([("jax", jax_math)]
                                                      if _importable("jax") else []))
def test_peer_namespaces_have_every_math_function(module, make_namespace):
    namespace = make_namespace()
    assert sorted(vars(namespace)) == sorted(vars(FLOAT_MATH))
    for workload in WORKLOADS.values():
        assert workload.supports(namespace)


def test_replay_agrees_with_eager_recording():
    workload = WORKLOADS["mlp"]
    recorded = wengert.record(lambda x: workload.f(x, wengert), workload.x0)
    value, gradient = recorded.value_and_grad(workload.x0)
    expected_value, expected_gradient = _record(wengert, workload)
    assert _relative_close(value, expected_value)
    scale = max(abs(g) for g in expected_gradient)
    for g, e in zip(gradient, expected_gradient):
        assert abs(g - e) <= 1e-12 * scale


def test_workload_is_a_frozen_record():
    workload = Workload(name="tiny", f=lambda x, m: x[0] * x[0], x0=[3.0], ops=1)
    assert workload.f(workload.x0, FLOAT_MATH) == 9.0
    with pytest.raises(AttributeError):
        workload.ops = 2
