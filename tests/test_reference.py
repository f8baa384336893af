"""Tests of the pure-Python reference engine, wengert.reference, on its own."""
import doctest
import math

import numpy as np
import pytest

import wengert as wg
from optable import CASES as OP_CASES, KINKS
from wengert import reference as rf

inf, nan = math.inf, math.nan


def _cbrt(x):
    return math.copysign(abs(x) ** (1.0 / 3.0), x)


# name: (oracle from the math module, sample points away from kinks and poles)
UNARY = {
    "exp": (math.exp, [-3.0, -0.5, 0.0, 0.7, 5.0]),
    "expm1": (math.expm1, [-2.0, -1e-8, 0.0, 1e-5, 3.0]),
    "exp2": (lambda x: 2.0 ** x, [-3.5, 0.0, 0.5, 10.0]),
    "log": (math.log, [1e-3, 0.5, 1.0, 7.0, 1e6]),
    "log1p": (math.log1p, [-0.9, -1e-9, 0.0, 2.5, 100.0]),
    "log2": (math.log2, [0.125, 1.0, 3.0, 1024.0]),
    "log10": (math.log10, [0.01, 1.0, 42.0]),
    "sqrt": (math.sqrt, [1e-4, 0.25, 2.0, 1e8]),
    "cbrt": (_cbrt, [-27.0, -0.3, 0.001, 8.0, 1e9]),
    "sin": (math.sin, [-4.0, -0.1, 0.0, 1.0, 30.0]),
    "cos": (math.cos, [-4.0, 0.0, 0.4, 3.0]),
    "tan": (math.tan, [-1.2, 0.0, 0.5, 1.5]),
    "asin": (math.asin, [-0.99, -0.3, 0.0, 0.8]),
    "acos": (math.acos, [-0.99, 0.0, 0.6, 0.95]),
    "atan": (math.atan, [-50.0, -1.0, 0.0, 2.0]),
    "sinh": (math.sinh, [-5.0, -0.2, 0.0, 3.0]),
    "cosh": (math.cosh, [-5.0, 0.0, 0.3, 3.0]),
    "tanh": (math.tanh, [-4.0, -0.5, 0.0, 0.9, 6.0]),
    "asinh": (math.asinh, [-100.0, -0.5, 0.0, 3.0]),
    "acosh": (math.acosh, [1.01, 2.0, 50.0]),
    "atanh": (math.atanh, [-0.99, -0.2, 0.0, 0.7]),
    "erf": (math.erf, [-3.0, -0.5, 0.0, 1.5]),
    "erfc": (math.erfc, [-2.0, 0.0, 0.8, 4.0]),
    "sigmoid": (lambda x: 1.0 / (1.0 + math.exp(-x)), [-30.0, -1.0, 0.0, 2.0, 30.0]),
    "relu": (lambda x: max(x, 0.0), [-3.0, -0.1, 0.2, 5.0]),
    "softplus": (lambda x: math.log1p(math.exp(x)), [-30.0, -1.0, 0.0, 2.0, 30.0]),
}
BINARY = {
    "atan2": (math.atan2, [(1.0, 2.0), (-0.5, 0.3), (2.0, -1.0), (-3.0, -0.1), (0.0, 1.0)]),
    "hypot": (math.hypot, [(3.0, 4.0), (-0.5, 0.3), (1e-3, -2.0)]),
    "pow": (math.pow, [(2.0, 3.0), (0.5, -1.5), (3.0, 0.5), (1.5, 0.0), (7.0, 1.0)]),
    "maximum": (max, [(1.0, 2.0), (-0.5, -0.7), (3.0, -3.0)]),
    "minimum": (min, [(1.0, 2.0), (-0.5, -0.7), (3.0, -3.0)]),
}
CASES = [(name, (x,)) for name, (_, points) in UNARY.items() for x in points] + [
    (name, point) for name, (_, points) in BINARY.items() for point in points]


def _oracle(name):
    return (UNARY.get(name) or BINARY[name])[0]


def _central_differences(f, point):
    """d f / d point[k] for each k, by central differences with a scaled step."""
    gradient = []
    for k, x in enumerate(point):
        h = 1e-6 * max(abs(x), 1e-2)
        up, down = list(point), list(point)
        up[k], down[k] = x + h, x - h
        gradient.append((f(*up) - f(*down)) / (2.0 * h))
    return gradient


def _record(name, point):
    """Record ``name`` at ``point`` on a fresh tape; return its output and gradient."""
    function = abs if name == "abs" else getattr(rf, name)
    with rf.Tape() as tape:
        inputs = tape.variables(point)
        y = function(*inputs)
        return y.value, tape.gradient(y, inputs)


# -- the classic examples ---------------------------------------------------------


def test_tutorial_sum_times_product():
    with rf.Tape():
        x, y, z = rf.variables([1.0, 3.0, -3.0])
        g = (x + y) * z
        g.backward()
    assert g.value == -12.0
    assert (x.grad, y.grad, z.grad) == (-3.0, -3.0, 4.0)


def test_tutorial_squared_loss():
    with rf.Tape():
        w, x, y = rf.variables([1.0, 1.0, 2.0])
        loss = (w * x - y) ** 2
        loss.backward()
    assert loss.value == 1.0
    assert (w.grad, x.grad, y.grad) == (-2.0, -2.0, 2.0)


# -- every function: value vs math, gradient vs central differences -----------------


def test_every_function_is_covered():
    names = set(UNARY) | set(BINARY)
    assert names == set(rf.RULES) - {"add", "sub", "mul", "div", "neg", "abs"}
    for name in names:
        assert getattr(rf, name).__name__ == name


@pytest.mark.parametrize("name, point", CASES)
def test_value_matches_math(name, point):
    expected = _oracle(name)(*point)
    number_result = getattr(rf, name)(*point)
    assert type(number_result) is float
    assert math.isclose(number_result, expected, rel_tol=1e-14, abs_tol=1e-300)
    value, _ = _record(name, point)
    assert value == number_result


@pytest.mark.parametrize("name, point", CASES)
def test_gradient_matches_central_differences(name, point):
    _, gradient = _record(name, point)
    expected = _central_differences(_oracle(name), point)
    for got, want in zip(gradient, expected):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-8), (got, want)


@pytest.mark.parametrize("expression, expected", [
    (lambda x, y: x + y, [1.0, 1.0]),
    (lambda x, y: x - y, [1.0, -1.0]),
    (lambda x, y: x * y, [-1.5, 2.0]),
    (lambda x, y: x / y, [1.0 / -1.5, -2.0 / 2.25]),
    (lambda x, y: x ** y, [-1.5 * 2.0 ** -2.5, math.log(2.0) * 2.0 ** -1.5]),
    (lambda x, y: -x * abs(y), [-1.5, 2.0]),
    (lambda x, y: +x + 0 * y, [1.0, 0.0]),
])
def test_operators(expression, expected):
    """Operators on Vars at x = 2, y = -1.5."""
    with rf.Tape() as tape:
        inputs = tape.variables([2.0, -1.5])
        y = expression(*inputs)
        assert tape.gradient(y, inputs) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("expression, value, slope", [
    (lambda x: 3 + x, 5.0, 1.0),
    (lambda x: x + 3, 5.0, 1.0),
    (lambda x: 3 - x, 1.0, -1.0),
    (lambda x: x - 3, -1.0, 1.0),
    (lambda x: 3 * x, 6.0, 3.0),
    (lambda x: x * 3.0, 6.0, 3.0),
    (lambda x: 3 / x, 1.5, -0.75),
    (lambda x: x / 4, 0.5, 0.25),
    (lambda x: 3 ** x, 9.0, 9.0 * math.log(3.0)),
    (lambda x: x ** 3, 8.0, 12.0),
    (lambda x: x ** 0.5, math.sqrt(2.0), 0.25 * math.sqrt(2.0)),
])
def test_operators_with_numbers_on_either_side(expression, value, slope):
    with rf.Tape() as tape:
        x = tape.var(2.0)
        y = expression(x)
        y.backward()
    assert y.value == pytest.approx(value, rel=1e-15)
    assert x.grad == pytest.approx(slope, rel=1e-15)


def test_square_is_computed_as_a_product():
    with rf.Tape():
        for value in [1.1, -3.7, 1e-170, 1e200, 0.1 + 0.2]:
            assert (rf.var(value) ** 2).value == value * value
    assert rf.pow(1e200, 2) == inf


def test_unsupported_operands_raise_type_error():
    with rf.Tape():
        x = rf.var(1.0)
        with pytest.raises(TypeError):
            x + "1"
        with pytest.raises(TypeError, match="exp"):
            rf.exp("1")
        with pytest.raises(TypeError, match="atan2"):
            rf.atan2(None, 1.0)


# -- the conventions of API.md ---------------------------------------------------


@pytest.mark.parametrize("name, point, expected", [
    ("log", (0.0,), -inf), ("log", (-0.0,), -inf), ("log", (-1.0,), nan), ("log", (-inf,), nan),
    ("log2", (0.0,), -inf), ("log10", (-2.0,), nan), ("log1p", (-1.0,), -inf),
    ("log1p", (-2.0,), nan), ("sqrt", (-1.0,), nan), ("sqrt", (-0.0,), -0.0),
    ("pow", (0.0, 0.0), 1.0), ("pow", (0.0, -1.0), inf), ("pow", (-0.0, -1.0), -inf),
    ("pow", (-0.0, -2.0), inf), ("pow", (0.0, -0.5), inf), ("pow", (-8.0, 1.0 / 3.0), nan),
    ("pow", (-2.0, 3.0), -8.0), ("pow", (-2.0, 2.0), 4.0), ("pow", (10.0, 400.0), inf),
    ("pow", (-10.0, 401.0), -inf), ("pow", (-10.0, 400.0), inf), ("pow", (nan, 0.0), 1.0),
    ("exp", (1000.0,), inf), ("exp", (-1000.0,), 0.0), ("expm1", (1000.0,), inf),
    ("exp2", (2000.0,), inf), ("sinh", (-1000.0,), -inf), ("sinh", (1000.0,), inf),
    ("cosh", (-1000.0,), inf), ("sin", (inf,), nan), ("cos", (-inf,), nan), ("tan", (inf,), nan),
    ("asin", (1.5,), nan), ("acos", (-1.5,), nan), ("acosh", (0.5,), nan),
    ("atanh", (1.0,), inf), ("atanh", (-1.0,), -inf), ("atanh", (2.0,), nan),
    ("cbrt", (-8.0,), -2.0), ("hypot", (inf, nan), inf),
    ("sigmoid", (-1000.0,), 0.0), ("sigmoid", (1000.0,), 1.0),
    ("softplus", (1000.0,), 1000.0), ("softplus", (-1000.0,), 0.0),
    ("relu", (nan,), nan), ("maximum", (nan, 1.0), nan), ("minimum", (1.0, nan), nan),
])
def test_ieee_values_without_raising(name, point, expected):
    got = getattr(rf, name)(*point)
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-15)
        assert math.copysign(1.0, got) == math.copysign(1.0, expected)
    assert _record(name, point)[0] == got or math.isnan(got)


@pytest.mark.parametrize("numerator, denominator, expected", [
    (1.0, 0.0, inf), (-1.0, 0.0, -inf), (1.0, -0.0, -inf), (0.0, 0.0, nan), (inf, 0.0, inf),
])
def test_division_by_zero(numerator, denominator, expected):
    with rf.Tape():
        a, b = rf.variables([numerator, denominator])
        got = (a / b).value
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@pytest.mark.parametrize("name, point, expected", [
    ("abs", (0.0,), [0.0]), ("relu", (0.0,), [0.0]), ("relu", (-2.0,), [0.0]),
    ("sqrt", (0.0,), [inf]), ("cbrt", (0.0,), [inf]), ("log", (0.0,), [inf]),
    ("asin", (1.0,), [inf]), ("atanh", (-1.0,), [inf]),
    ("maximum", (2.0, 2.0), [0.5, 0.5]), ("minimum", (-1.0, -1.0), [0.5, 0.5]),
    ("maximum", (3.0, 2.0), [1.0, 0.0]), ("minimum", (3.0, 2.0), [0.0, 1.0]),
    ("maximum", (nan, 2.0), [nan, nan]), ("minimum", (2.0, nan), [nan, nan]),
    ("pow", (0.0, 0.0), [0.0, 0.0]), ("pow", (3.0, 0.0), [0.0, math.log(3.0)]),
    ("pow", (0.0, 2.5), [0.0, 0.0]), ("pow", (0.0, 1.0), [1.0, 0.0]),
    ("pow", (-2.0, 3.0), [12.0, nan]),
    ("atan2", (0.0, 0.0), [0.0, 0.0]), ("hypot", (0.0, 0.0), [0.0, 0.0]),
    ("atan2", (1e-200, 1e-200), [5e199, -5e199]),
    ("sigmoid", (-1000.0,), [0.0]), ("sigmoid", (1000.0,), [0.0]),
    ("softplus", (-1000.0,), [0.0]), ("softplus", (1000.0,), [1.0]),
    ("softplus", (0.7,), [rf.sigmoid(0.7)]),
])
def test_partials_at_conventional_points(name, point, expected):
    _, gradient = _record(name, point)
    assert len(gradient) == len(expected)
    for got, want in zip(gradient, expected):
        assert got == pytest.approx(want, rel=1e-15) or (math.isnan(got) and math.isnan(want))


def test_an_exact_zero_adjoint_propagates_nothing():
    with rf.Tape() as tape:
        x = rf.var(0.0)
        unused = rf.sqrt(x) + rf.log(x)                 # partials inf, off the path to y
        y = 0.0 * rf.sqrt(x) + 2.0 * x                  # sqrt'(0) = inf, times an exact 0
        assert tape.gradient(y, [x]) == [2.0]
        assert unused.grad == 0.0


# -- the tape -------------------------------------------------------------------


def test_rows_and_sentinel():
    with rf.Tape() as tape:
        x = rf.var(2.0)
        y = rf.exp(x) * 3
    assert len(tape) == 4
    assert tape.op == ["const", "input", "exp", "const", "mul"]
    assert (tape.arg0[0], tape.arg1[0], tape.value[0]) == (0, 0, 0.0)    # the sentinel
    assert (tape.arg0[2], tape.arg1[2], tape.d1[2]) == (1, 0, 0.0)     # unary: arg1 -> row 0
    assert (tape.arg0[4], tape.arg1[4]) == (2, 3)
    assert tape.d0[4] == 3.0 and tape.d1[4] == math.exp(2.0)
    y.backward()
    assert x.grad == pytest.approx(3.0 * math.exp(2.0), rel=1e-15)
    assert tape.value[0] == 0.0


def test_backward_twice_overwrites_instead_of_accumulating():
    with rf.Tape() as tape:
        x = rf.var(3.0)
        y = x * x + x
        tape.backward(y)
        tape.backward(y)
        assert x.grad == 7.0
        y.backward(seed=2.0)
        assert x.grad == 14.0
        z = rf.sin(x)
        tape.backward(z)
        assert x.grad == math.cos(3.0)
        assert y.grad == 0.0                             # not on the path to z: 0, not stale 2.0


def test_gradient_of_rows_after_the_output_is_zero():
    with rf.Tape() as tape:
        x, w = rf.variables([1.5, 2.0])
        y = x * 2
        later = w * x
        assert tape.gradient(y, [x, w, later]) == [2.0, 0.0, 0.0]


def test_long_chain_has_no_recursion_limit():
    n = 100_000
    with rf.Tape() as tape:
        x = rf.var(0.5)
        y = x
        for _ in range(n):
            y = y + x
        y.backward()
    assert len(tape) == n + 1
    assert y.value == (n + 1) * 0.5
    assert x.grad == n + 1


def test_mark_rewind_reset_and_stale_variables():
    tape = rf.Tape()
    w = tape.var(2.0)
    start = tape.mark()
    assert start == 1
    for _ in range(3):
        scaled = w * 3.0
        loss = (scaled - 1.0) ** 2
        loss.backward()
        assert w.grad == 30.0
        tape.rewind(start)
        assert len(tape) == 1
    with pytest.raises(RuntimeError, match="dropped"):
        loss.value
    replacement = w * 1.0                               # reuses the rows of 3.0 and scaled
    assert replacement.index == scaled.index
    with pytest.raises(RuntimeError, match="dropped"):
        scaled + 1.0
    assert replacement.value == 2.0 and w.value == 2.0
    with pytest.raises(ValueError, match="mark"):
        tape.rewind(len(tape) + 1)
    tape.reset()
    assert len(tape) == 0
    with pytest.raises(RuntimeError):
        w.grad


def test_variables_of_two_tapes_do_not_mix():
    x, y = rf.Tape().var(1.0), rf.Tape().var(2.0)
    with pytest.raises(ValueError, match="different tapes"):
        x + y
    with pytest.raises(ValueError, match="different tapes"):
        x.tape.backward(y)


def test_context_manager_makes_a_tape_current_and_nests():
    outer, inner = rf.Tape(), rf.Tape()
    with outer:
        a = rf.var(1.0)
        with inner:
            b = rf.var(2.0)
        c = rf.var(3.0)
    assert a.tape is outer and b.tape is inner and c.tape is outer
    assert (len(outer), len(inner)) == (2, 1)


def test_comparisons_conversions_and_hash():
    with rf.Tape():
        x, y, z = rf.variables([1.0, 2.0, 1.0])
    assert (x < y, x <= z, x == z, x != y, y > 1, y >= 2.5) == (True, True, True, True, True, False)
    assert type(x == z) is bool and type(x < 2) is bool
    assert float(y) == 2.0 and bool(x) and abs(-y).value == 2.0
    assert len({x, z}) == 2                              # identity hash, despite x == z
    assert repr(x) == "Var(value=1.0, grad=0.0)"


def test_value_and_grad_and_grad():
    value, gradient = rf.value_and_grad(lambda x: x[0] * rf.sin(x[1]) + x[0] ** 2)([2.0, 0.5])
    assert value == pytest.approx(2.0 * math.sin(0.5) + 4.0, rel=1e-15)
    assert gradient == pytest.approx([math.sin(0.5) + 4.0, 2.0 * math.cos(0.5)], rel=1e-15)
    assert rf.value_and_grad(lambda x: rf.exp(2 * x))(0.0) == (1.0, 2.0)
    assert rf.grad(lambda x: rf.tanh(x))(0.0) == 1.0
    assert rf.grad(lambda x: 3.0)(1.0) == 0.0
    assert rf.grad(lambda x: x[0] * 0)([1.0, 2.0]) == [0.0, 0.0]


# -- second order: tangents, hvp, hessian ----------------------------------------


def _reference_op(name):
    """Op ``name`` of tests/optable.py on reference Vars, and its number of variable operands."""
    case = OP_CASES[name]
    function = getattr(rf, name) if case.apply is getattr(wg, name, None) else case.apply
    if case.constant_second:
        return lambda x, exponent: function(x[0], exponent), 1
    return (lambda x: function(*x)), len(case.domain)


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_second_partials_match_differences_of_first_partials(name):
    case = OP_CASES[name]
    function, arity = _reference_op(name)
    rng = np.random.default_rng(sum(map(ord, name)) + 2)
    checked = 0
    for _ in range(15):
        point = [float(rng.uniform(low, high)) for low, high in case.domain]
        kink = KINKS.get(name)
        if kink and min(abs(d) for d in kink(*point)) < 1e-3:
            continue
        x, extra = point[:arity], point[arity:]

        def of_x(v, extra=extra):
            return function(v, *extra)

        hessian, gradient = rf.hessian(of_x)(x), rf.grad(of_x)
        for j in range(arity):
            h = 1e-5 * max(1.0, abs(x[j]))
            up, down = list(x), list(x)
            up[j] += h
            down[j] -= h
            column = [(a - b) / (2.0 * h) for a, b in zip(gradient(up), gradient(down))]
            for k in range(arity):
                assert math.isclose(hessian[k][j], column[k], rel_tol=1e-5, abs_tol=1e-6), (
                    name, point, k, j, hessian[k][j], column[k])
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("name, point, expected", [
    ("abs", (0.0,), [0.0]), ("abs", (nan,), [0.0]), ("relu", (0.0,), [0.0]),
    ("maximum", (2.0, 2.0), [0.0, 0.0, 0.0, 0.0]), ("minimum", (nan, 1.0), [0.0, 0.0, 0.0, 0.0]),
    ("atan2", (0.0, 0.0), [0.0, 0.0, 0.0, 0.0]), ("hypot", (0.0, 0.0), [0.0, 0.0, 0.0, 0.0]),
    ("pow", (0.0, 0.5), [-inf, 0.0, 0.0, 0.0]),      # sqrt''(0); no log(0) at a = 0
    ("pow", (3.0, 0.0), [0.0, 1.0 / 3.0, 1.0 / 3.0, math.log(3.0) ** 2]),  # constant in a
    ("pow", (nan, 2.0), [2.0, nan, nan, nan]),       # the square, exactly
    ("pow", (5.0, 1.0), [0.0, 1.0 + math.log(5.0), 1.0 + math.log(5.0), 5.0 * math.log(5.0) ** 2]),
    ("sqrt", (0.0,), [-inf]), ("log", (0.0,), [-inf]), ("cbrt", (-0.0,), [inf]),
    ("atan2", (0.0, 1e-200), [0.0, -inf, -inf, 0.0]),        # 1/(r*r) would overflow
    ("atan2", (1e-200, 1e-160), [-2e280, -inf, -inf, 2e280]),
    ("atan2", (1e-200, 1e-200), [-inf, 0.0, 0.0, inf]),
    ("atan2", (0.5, -1e300), [0.0, -0.0, -0.0, -0.0]),       # r*r would overflow
])
def test_second_partials_at_conventional_points(name, point, expected):
    """Flattened Hessians of one op at its kinks, poles and conventional points."""
    with rf.Tape():
        hessian = rf.hessian(lambda x: getattr(rf, name)(*x) if name != "abs" else abs(x[0]))
        got = sum(hessian(list(point)), [])
    for g, want in zip(got, expected):
        assert g == pytest.approx(want, rel=1e-12, abs=0.0) or (math.isnan(g) and math.isnan(want))


def test_jvp_hvp_and_hessian_of_a_known_function():
    def f(x):
        return x[0] ** 2 * x[1] + rf.sin(x[1]) * x[2]

    x, v = [1.5, -0.5, 2.0], [1.0, -2.0, 0.5]
    s, c = math.sin(-0.5), math.cos(-0.5)
    H = [[2 * x[1], 2 * x[0], 0.0], [2 * x[0], -s * x[2], c], [0.0, c, 0.0]]
    gradient = [2 * x[0] * x[1], x[0] ** 2 + c * x[2], s]
    value, tangent = rf.jvp(f)(x, v)
    assert value == f(x) and value == pytest.approx(-1.125 + 2.0 * s, rel=1e-15)
    assert tangent == pytest.approx(sum(g * d for g, d in zip(gradient, v)), rel=1e-15)
    assert rf.hvp(f)(x, v) == pytest.approx([sum(h * d for h, d in zip(row, v)) for row in H],
                                           rel=1e-15)
    hessian = rf.hessian(f)(x)
    assert hessian == [pytest.approx(row, rel=1e-15) for row in H]
    assert all(hessian[i][j] == hessian[j][i] for i in range(3) for j in range(3))
    assert rf.jvp(lambda t: rf.exp(2 * t))(0.0, 3.0) == (1.0, 6.0)
    assert rf.hvp(lambda t: t ** 3)(2.0, 0.5) == 6.0
    assert rf.hessian(lambda t: rf.log(t))(2.0) == -0.25
    assert rf.jvp(lambda x: 3.0)([1.0], [1.0]) == (3.0, 0.0)
    assert rf.hessian(lambda x: x[0] * 0 + 1.0)([1.0, 2.0]) == [[0.0, 0.0], [0.0, 0.0]]


def test_tangents_and_hvp_on_the_tape():
    with rf.Tape() as tape:
        x, y = rf.variables([2.0, 3.0])
        z = x * y + rf.exp(x)                            # rows: x, y, mul, exp, add
        tangent = tape.tangents([x, y], [1.0, 10.0])
        assert tangent[z.index] == pytest.approx(3.0 + math.exp(2.0) + 20.0, rel=1e-15)
        assert tape.tangent is tangent and len(tangent) == len(tape) + 1 and tangent[0] == 0.0
        assert tape.tangents([x, x], [1.0, 1.0])[z.index] == tape.tangents([x], [2.0])[z.index]
        hv = tape.hvp(z, [x, y], [1.0, 0.0])             # column 0 of [[e^2, 1], [1, 0]]
        assert hv == pytest.approx([math.exp(2.0), 1.0], rel=1e-15)
        assert (x.grad, y.grad) == (pytest.approx(3.0 + math.exp(2.0), rel=1e-15), 2.0)
        assert tape.hvp(x * 2.0, [x, y], [1.0, 1.0]) == [0.0, 0.0]
        assert tape.hvp(x, [x, y], [1.0, 0.0]) == [0.0, 0.0]   # y: after x, not swept


def test_tangents_and_hvp_reject_bad_arguments():
    with rf.Tape() as tape:
        x, y = rf.variables([2.0, 3.0])
        z = x * y
        with pytest.raises(ValueError, match="one number per variable"):
            tape.tangents([x, y], [1.0])
        with pytest.raises(ValueError, match="not an input"):
            tape.tangents([z], [1.0])
        with pytest.raises(ValueError, match="not an input"):
            tape.hvp(z, [x, z], [1.0, 1.0])
        with pytest.raises(TypeError, match="hvp"):
            tape.hvp(1.0, [x], [1.0])
    with pytest.raises(ValueError, match="different tapes"):
        rf.Tape().tangents([x], [1.0])


def test_an_exact_zero_factor_propagates_nothing_in_second_order():
    with rf.Tape() as tape:
        x = rf.var(0.0)
        rf.sqrt(x) + rf.log(x)                           # curvature -inf, off the path to y
        y = 0.0 * rf.sqrt(x) + x * x                     # sqrt''(0) = -inf, times an exact 0
        assert tape.hvp(y, [x], [1.0]) == [2.0]
        assert tape.tangents([x], [0.0])[y.index] == 0.0
    assert rf.hessian(lambda t: 0.0 * rf.sqrt(t) + t * t)(0.0) == 2.0
    assert rf.jvp(lambda t: 0.0 * rf.log(t) + 3.0 * t)(0.0, 1.0)[1] == 3.0   # value: 0 * -inf


def test_rewind_drops_tangent_columns():
    with rf.Tape() as tape:
        x = rf.var(1.0)
        mark = tape.mark()
        y = rf.sin(x) * x
        tape.hvp(y, [x], [1.0])
        tape.rewind(mark)
    assert len(tape.tangent) == len(tape.adjoint_tangent) == len(tape.adjoint) == 2


def test_doctests():
    result = doctest.testmod(rf)
    assert result.attempted > 0
    assert result.failed == 0
