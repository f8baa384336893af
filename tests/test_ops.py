"""Every op of the op table: value vs math, partials vs closed form and
central differences, over a per-op domain; the plain-number path; the tape row."""

import math

import numpy as np
import pytest

import wengert as wg
from optable import CASES, KINKS, LEAVES

POINTS = 25


def sample_points(name):
    case = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    return [tuple(float(rng.uniform(low, high)) for low, high in case.domain)
            for _ in range(POINTS)]


def record(name, point):
    """Record the op at ``point``; return (output Var, operand Vars, tape)."""
    case = CASES[name]
    tape = wg.Tape()
    if case.constant_second:
        operands = [tape.var(point[0])]
        output = case.apply(operands[0], point[1])
    else:
        operands = tape.variables(point)
        output = case.apply(*operands)
    output.backward()
    return output, operands, tape


def central_difference(function, point, k):
    step = 1e-6 * max(1.0, abs(point[k]))
    up, down = list(point), list(point)
    up[k] += step
    down[k] -= step
    return (function(*up) - function(*down)) / (2 * step)


def test_every_op_has_a_test_domain():
    assert set(wg.OP_NAMES) == set(CASES) | LEAVES


def test_arity_follows_the_table():
    for name, case in CASES.items():
        arity = wg.OP_ARITY[wg.OP_NAMES.index(name)]
        assert arity == len(case.domain), name


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_matches_math(name):
    case = CASES[name]
    for point in sample_points(name):
        output, _, _ = record(name, point)
        assert output.value == pytest.approx(case.value(*point), rel=1e-14, abs=1e-300), point


@pytest.mark.parametrize("name", sorted(CASES))
def test_partials_match_closed_form(name):
    case = CASES[name]
    for point in sample_points(name):
        _, operands, _ = record(name, point)
        expected = case.partials(*point)
        got = tuple(v.grad for v in operands)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-14), point


@pytest.mark.parametrize("name", sorted(CASES))
def test_partials_match_central_differences(name):
    case = CASES[name]
    kink = KINKS.get(name)
    checked = 0
    for point in sample_points(name):
        if kink and min(abs(d) for d in kink(*point)) < 1e-3:
            continue                  # no finite difference across a kink
        _, operands, _ = record(name, point)
        for k, variable in enumerate(operands):
            estimate = central_difference(case.value, point, k)
            assert variable.grad == pytest.approx(estimate, rel=1e-6, abs=1e-7), (point, k)
            checked += 1
    assert checked >= POINTS // 2


@pytest.mark.parametrize("name", sorted(CASES))
def test_tape_row_holds_op_operands_partials_and_value(name):
    case = CASES[name]
    point = sample_points(name)[0]
    output, operands, tape = record(name, point)
    rows = tape.to_arrays()
    i = output.index
    assert wg.OP_NAMES[rows["op"][i]] == name
    assert rows["value"][i] == output.value
    assert rows["arg0"][i] == operands[0].index
    assert rows["d0"][i] == operands[0].grad
    if len(case.domain) == 1:
        assert rows["arg1"][i] == 0 and rows["d1"][i] == 0.0      # the sentinel, no partial
    elif case.constant_second:
        constant = rows["arg1"][i]
        assert wg.OP_NAMES[rows["op"][constant]] == "const"
        assert rows["value"][constant] == point[1] and rows["d1"][i] == 0.0
    else:
        assert rows["arg1"][i] == operands[1].index and rows["d1"][i] == operands[1].grad


@pytest.mark.parametrize("name", sorted(n for n in CASES if not CASES[n].constant_second))
def test_plain_numbers_give_the_same_float(name):
    case = CASES[name]
    for point in sample_points(name)[:5]:
        output, _, _ = record(name, point)
        plain = case.apply(*point)
        if name in ("add", "sub", "mul", "div", "neg", "abs", "pow"):
            plain = float(plain)      # Python's own operators on floats
        assert isinstance(plain, float)
        assert plain == pytest.approx(output.value, rel=1e-15)


@pytest.mark.parametrize("function", [wg.sin, wg.exp, wg.log, wg.relu])
def test_math_functions_accept_ints_and_numpy_scalars(function):
    assert function(2) == function(2.0) == function(np.float32(2.0)) == function(np.int64(2))
    assert isinstance(function(np.float64(2.0)), float)


@pytest.mark.parametrize("function", [wg.sin, wg.tanh, wg.sqrt])
def test_math_functions_reject_other_types(function):
    with pytest.raises(TypeError, match="expects a wengert Var or a real number, got str"):
        function("1.0")


def test_binary_functions_mix_vars_and_numbers():
    with wg.Tape():
        x = wg.var(3.0)
        for function, reference in [(wg.atan2, math.atan2), (wg.hypot, math.hypot),
                                    (wg.pow, math.pow), (wg.maximum, max), (wg.minimum, min)]:
            assert function(x, 2.0).value == pytest.approx(reference(3.0, 2.0), rel=1e-15)
            assert function(2.0, x).value == pytest.approx(reference(2.0, 3.0), rel=1e-15)
    with pytest.raises(TypeError, match="hypot"):
        wg.hypot(1.0, "2")


def test_power_with_a_variable_base_and_a_constant_exponent_records_pow_const():
    with wg.Tape() as tape:
        x = wg.var(3.0)
        y = x ** 3
        z = 2.0 ** x
    ops = tape.to_arrays()["op"]
    assert wg.OP_NAMES[ops[y.index]] == "pow_const"
    assert wg.OP_NAMES[ops[z.index]] == "pow"
    z.backward()
    assert x.grad == pytest.approx(8.0 * math.log(2.0), rel=1e-15)
    y.backward()
    assert x.grad == 27.0


def test_square_is_exact():
    with wg.Tape():
        for value in (0.1, -3.7, 1e150, 1e-160):
            x = wg.var(value)
            square = x ** 2
            square.backward()
            assert square.value == value * value and x.grad == 2 * value
