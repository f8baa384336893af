"""Property tests on random expression DAGs that reuse nodes.

A program is a list of instructions ``(op, i, j, constant)``, each reading
earlier nodes ``i`` and ``j`` (inputs first, then earlier results), so nodes
fan out to several consumers: that is where adjoint bugs live.  Every op is
wrapped so that its operand stays inside the op's smooth, finite domain
(``log(1 + x*x)``, ``asin(0.9 * tanh(x))``, ...).  One interpreter runs a
program on either engine, the compiled ``wengert`` or ``wengert.reference``.
"""
import math

import numpy as np
import pytest
from hypothesis import example, assume, given
from hypothesis import strategies as st

import wengert
from wengert import reference


def _square_plus(ns, x, c):  # >= c > 0
    return c + x * x


def _squash(ns, x, c):       # in (-c, c)
    return c * ns.tanh(x)


# name: instruction(ns, x, y, c) on nodes x and y and a constant c in CONSTANTS
OPS = {
    "add": lambda ns, x, y, c: x + y,
    "sub": lambda ns, x, y, c: x - y,
    "mul": lambda ns, x, y, c: x * y,
    "div": lambda ns, x, y, c: x / _square_plus(ns, y, 1.0),
    "pow": lambda ns, x, y, c: ns.pow(_square_plus(ns, x, 0.5), _squash(ns, y, 2.0)),
    "pow_operator": lambda ns, x, y, c: _square_plus(ns, x, 0.5) ** ns.sin(y),
    "atan2": lambda ns, x, y, c: ns.atan2(x, y),
    "hypot": lambda ns, x, y, c: ns.hypot(x, y),
    "maximum": lambda ns, x, y, c: ns.maximum(x, y),
    "minimum": lambda ns, x, y, c: ns.minimum(x, y),
    "add_constant": lambda ns, x, y, c: x + c,
    "constant_add": lambda ns, x, y, c: c + x,
    "sub_constant": lambda ns, x, y, c: x - c,
    "constant_sub": lambda ns, x, y, c: c - x,
    "mul_constant": lambda ns, x, y, c: x * c,
    "constant_mul": lambda ns, x, y, c: c * x,
    "div_constant": lambda ns, x, y, c: x / c,
    "constant_div": lambda ns, x, y, c: c / _square_plus(ns, x, 1.0),
    "square": lambda ns, x, y, c: x ** 2,
    "cube": lambda ns, x, y, c: x ** 3,
    "pow_constant": lambda ns, x, y, c: _square_plus(ns, x, 1.0) ** c,
    "constant_pow": lambda ns, x, y, c: abs(c) ** _squash(ns, x, 2.0),
    "neg": lambda ns, x, y, c: -x,
    "pos": lambda ns, x, y, c: +x,
    "abs": lambda ns, x, y, c: abs(x),
    "exp": lambda ns, x, y, c: ns.exp(_squash(ns, x, 3.0)),
    "expm1": lambda ns, x, y, c: ns.expm1(_squash(ns, x, 3.0)),
    "exp2": lambda ns, x, y, c: ns.exp2(_squash(ns, x, 3.0)),
    "log": lambda ns, x, y, c: ns.log(_square_plus(ns, x, 0.1)),
    "log1p": lambda ns, x, y, c: ns.log1p(x * x),
    "log2": lambda ns, x, y, c: ns.log2(_square_plus(ns, x, 0.5)),
    "log10": lambda ns, x, y, c: ns.log10(_square_plus(ns, x, 2.0)),
    "sqrt": lambda ns, x, y, c: ns.sqrt(_square_plus(ns, x, 0.25)),
    "cbrt": lambda ns, x, y, c: ns.cbrt(x),
    "sin": lambda ns, x, y, c: ns.sin(x),
    "cos": lambda ns, x, y, c: ns.cos(x),
    "tan": lambda ns, x, y, c: ns.tan(_squash(ns, x, 1.4)),
    "asin": lambda ns, x, y, c: ns.asin(_squash(ns, x, 0.9)),
    "acos": lambda ns, x, y, c: ns.acos(_squash(ns, x, 0.9)),
    "atan": lambda ns, x, y, c: ns.atan(x),
    "sinh": lambda ns, x, y, c: ns.sinh(_squash(ns, x, 3.0)),
    "cosh": lambda ns, x, y, c: ns.cosh(_squash(ns, x, 3.0)),
    "tanh": lambda ns, x, y, c: ns.tanh(x),
    "asinh": lambda ns, x, y, c: ns.asinh(x),
    "acosh": lambda ns, x, y, c: ns.acosh(_square_plus(ns, x, 1.5)),
    "atanh": lambda ns, x, y, c: ns.atanh(_squash(ns, x, 0.9)),
    "erf": lambda ns, x, y, c: ns.erf(x),
    "erfc": lambda ns, x, y, c: ns.erfc(x),
    "sigmoid": lambda ns, x, y, c: ns.sigmoid(x),
    "relu": lambda ns, x, y, c: ns.relu(x),
    "softplus": lambda ns, x, y, c: ns.softplus(x),
}
BINARY = {"add", "sub", "mul", "div", "pow", "pow_operator", "atan2", "hypot", "maximum", "minimum"}
CONSTANTS = [-2.5, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0]

# Ops whose derivative jumps (a branch) or is unbounded (a singular point)
# where some function of their raw operands crosses zero.
BRANCH = {
    "abs": lambda a, b: a, "relu": lambda a, b: a, "cbrt": lambda a, b: a,
    "maximum": lambda a, b: a - b, "minimum": lambda a, b: a - b,
    "atan2": lambda a, b: a if b < 0 else math.hypot(a, b), "hypot": lambda a, b: math.hypot(a, b),
}


@st.composite
def programs(draw):
    """(inputs, instructions): 1-4 input values and 1-30 instructions."""
    inputs = draw(st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=4))
    instructions = []
    for k in range(draw(st.integers(1, 30))):
        n_nodes = len(inputs) + k
        name = draw(st.sampled_from(sorted(OPS)))
        # Counting back from the newest node makes deep chains the simplest case.
        i = n_nodes - 1 - draw(st.integers(0, n_nodes - 1))
        j = n_nodes - 1 - draw(st.integers(0, n_nodes - 1))
        instructions.append((name, i, j, draw(st.sampled_from(CONSTANTS))))
    return inputs, instructions


def evaluate(ns, instructions, nodes):
    """Append every instruction's result to ``nodes`` (the inputs); return the output.

    The output is the sum of the last result and every result no instruction
    reads, so that every instruction is on the path to it.
    """
    n_inputs = len(nodes)
    for name, i, j, constant in instructions:
        nodes.append(OPS[name](ns, nodes[i], nodes[j], constant))
    read = {k for name, i, j, _ in instructions for k in ((i, j) if name in BINARY else (i,))}
    y = nodes[-1]
    for k in range(n_inputs, len(nodes) - 1):
        if k not in read:
            y = y + nodes[k]
    return y


def program_function(ns, instructions):
    """The program as a function of a list (or array) of inputs, for ``ns``'s transforms."""
    return lambda x: evaluate(ns, instructions, list(x))


def run(ns, instructions, inputs):
    """Run a program on engine ``ns``; return (node values and output, gradient, tape length)."""
    with ns.Tape() as tape:
        nodes = tape.variables(inputs)
        y = evaluate(ns, instructions, nodes)
        gradient = [float(g) for g in tape.gradient(y, nodes[:len(inputs)])]
        return [node.value for node in nodes] + [y.value], gradient, len(tape)


def branches(instructions, values):
    """Side of every branch or singular point the program passes."""
    return [BRANCH[name](values[i], values[j]) > 0 for name, i, j, _ in instructions
            if name in BRANCH]


def margin(instructions, values):
    """Smallest distance from a branch or singular point, in operand units."""
    return min([abs(BRANCH[name](values[i], values[j])) for name, i, j, _ in instructions
                if name in BRANCH], default=math.inf)


def assume_smooth(instructions, inputs):
    """Discard programs that leave the ranges where finite differences are meaningful."""
    values = run(reference, instructions, inputs)[0]
    assume(all(math.isfinite(v) and abs(v) < 1e4 for v in values))
    assume(margin(instructions, values) > 1e-2)
    return values


def close(got, want, rel, abs_):
    """Equal within tolerances, with inf equal to itself and nan equal to nan."""
    if got == want or (math.isnan(got) and math.isnan(want)):
        return True
    return abs(got - want) <= abs_ + rel * abs(want)


def central_difference(instructions, inputs, direction, values):
    """The directional derivative from central differences with steps h and 2h,
    Richardson-extrapolated: (4 D(h) - D(2h)) / 3, whose truncation error is
    O(h^4) rather than O(h^2) (near a pole, h^2/6 times the third derivative
    alone can exceed the tolerance).  None if x +- hv or x +- 2hv crosses a branch."""
    h = 1e-6 * max(1.0, max(abs(x) for x in inputs))
    estimates = []
    for step in (h, 2.0 * h):
        outputs = []
        for sign in (1.0, -1.0):
            point = [x + sign * step * v for x, v in zip(inputs, direction)]
            shifted = run(reference, instructions, point)[0]
            if branches(instructions, shifted) != branches(instructions, values):
                return None
            outputs.append(shifted[-1])
        estimates.append((outputs[0] - outputs[1]) / (2.0 * step))
    return (4.0 * estimates[0] - estimates[1]) / 3.0


def check_against_differences(gradient, instructions, inputs, direction, values):
    estimate = central_difference(instructions, inputs, direction, values)
    assume(estimate is not None)
    slope = sum(g * v for g, v in zip(gradient, direction))
    # Scale of the terms the slope is a sum of: cancellation there is not an error.
    scale = sum(abs(g * v) for g, v in zip(gradient, direction))
    assert abs(slope - estimate) <= 1e-5 * scale + 1e-6 * max(1.0, abs(values[-1])), (
        slope, estimate)


@given(programs())
def test_compiled_engine_matches_reference(program):
    inputs, instructions = program
    values, gradient, length = run(reference, instructions, inputs)
    compiled_values, compiled_gradient, compiled_length = run(wengert, instructions, inputs)
    assert compiled_length == length
    for got, want in zip(compiled_values + compiled_gradient, values + gradient):
        assert close(got, want, rel=1e-12, abs_=1e-12), (got, want)


@given(programs())
def test_gradients_match_central_differences(program):
    inputs, instructions = program
    values = assume_smooth(instructions, inputs)
    for engine in (reference, wengert):
        gradient = run(engine, instructions, inputs)[1]
        for k in range(len(inputs)):
            unit = [1.0 if m == k else 0.0 for m in range(len(inputs))]
            check_against_differences(gradient, instructions, inputs, unit, values)


@given(programs(), st.lists(st.floats(-1.0, -0.1) | st.floats(0.1, 1.0), min_size=4, max_size=4))
def test_directional_derivative_matches_central_difference(program, direction):
    inputs, instructions = program
    direction = direction[:len(inputs)]
    values = assume_smooth(instructions, inputs)
    for engine in (reference, wengert):
        gradient = run(engine, instructions, inputs)[1]
        check_against_differences(gradient, instructions, inputs, direction, values)


# Every elementary op on its raw operands, anywhere (inf, nan, poles, ties, tiny, huge).
RAW_OPS = {
    "add": lambda ns, x, y: x + y, "sub": lambda ns, x, y: x - y,
    "mul": lambda ns, x, y: x * y, "div": lambda ns, x, y: x / y,
    "pow_operator": lambda ns, x, y: x ** y,
    **{name: (lambda name: lambda ns, x, y: getattr(ns, name)(x, y))(name)  # noqa: B023
       for name in ("pow", "atan2", "hypot", "maximum", "minimum")},
    "neg": lambda ns, x, y: -x, "abs": lambda ns, x, y: abs(x),
    **{name: (lambda name: lambda ns, x, y: getattr(ns, name)(x))(name)  # noqa: B023
       for name in ("exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "cbrt",
                    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                    "asinh", "acosh", "atanh", "erf", "erfc", "sigmoid", "relu", "softplus")},
}
SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, math.inf, -math.inf, math.nan, 1e-200, -1e300, 710.0]
operands = st.sampled_from(SPECIAL) | st.floats(allow_nan=True, allow_infinity=True)


def run_op(ns, name, a, b):
    with ns.Tape() as tape:
        x, y = tape.variables([a, b])
        z = RAW_OPS[name](ns, x, y)
        return [z.value] + [float(g) for g in tape.gradient(z, [x, y])]


@given(st.sampled_from(sorted(RAW_OPS)), operands, operands)
@example("atan2", 1e-200, 1e-200)       # a*a + b*b underflowed here once: zero partials
@example("atan2", 0.0, 2.64e279)        # ... and overflowed here
def test_every_op_matches_reference_everywhere(name, a, b):
    for got, want in zip(run_op(wengert, name, a, b), run_op(reference, name, a, b)):
        assert close(got, want, rel=1e-12, abs_=1e-300), (got, want)


# -- second order: jvp, hvp and hessian against the reference engine's ---------------

directions = st.lists(st.floats(-1.0, -0.1) | st.floats(0.1, 1.0), min_size=4, max_size=4)


def second_order_mismatches(instructions, inputs, direction):
    """Every (what, got, want) where wengert's jvp, hvp or hessian, eager or recorded,
    differs from the reference engine's on this program."""
    reference_function = program_function(reference, instructions)
    compiled_function = program_function(wengert, instructions)
    recorded = wengert.record(compiled_function, np.array(inputs))
    x, v = np.array(inputs), np.array(direction)
    want = {"jvp": list(reference.jvp(reference_function)(inputs, direction)),
            "hvp": reference.hvp(reference_function)(inputs, direction),
            "hessian": sum(reference.hessian(reference_function)(inputs), [])}
    got = {"jvp": [wengert.jvp(compiled_function)(x, v), recorded.jvp(x, v)],
           "hvp": [wengert.hvp(compiled_function)(x, v), recorded.hvp(x, v)],
           "hessian": [wengert.hessian(compiled_function)(x), recorded.hessian(x)]}
    mismatches = []
    for what in want:
        for result in got[what]:
            flat = [float(r) for r in np.ravel(result)]
            assert len(flat) == len(want[what])
            mismatches += [(what, g, w) for g, w in zip(flat, want[what])
                           if not close(g, w, rel=1e-12, abs_=1e-12)]
    return mismatches


@given(programs(), directions)
@example(([0.3, -0.7, 2.0], [("tanh", 0, 0, 1.0), ("atan2", 3, 1, 1.0), ("mul", 4, 2, 1.0),
                             ("maximum", 5, 0, 1.0), ("pow", 6, 3, 1.0)]), [0.5, -1.0, 0.25, 1.0])
def test_compiled_second_order_matches_reference(program, direction):
    inputs, instructions = program
    assert second_order_mismatches(instructions, inputs, direction[:len(inputs)]) == []


@given(programs())
def test_reference_hessians_match_differences_of_reference_gradients(program):
    """An independent check of the oracle: columns of its Hessian vs central
    differences of its gradients, on programs away from branches and overflow."""
    inputs, instructions = program
    values = assume_smooth(instructions, inputs)
    function = program_function(reference, instructions)
    hessian = reference.hessian(function)(inputs)
    gradient = reference.grad(function)
    h = 1e-6 * max(1.0, max(abs(x) for x in inputs))
    # Rounding in the differenced gradients: about 1e-16 |g| / h.
    rounding = 1e-9 * max(abs(g) for g in gradient(inputs))
    for k in range(len(inputs)):
        points = [[x + (sign * h if m == k else 0.0) for m, x in enumerate(inputs)]
                  for sign in (1.0, -1.0)]
        shifted = [run(reference, instructions, point)[0] for point in points]
        assume(all(branches(instructions, s) == branches(instructions, values) for s in shifted))
        column = [(up - down) / (2.0 * h) for up, down in zip(*map(gradient, points))]
        scale = max([1.0] + [abs(c) for c in column])
        for m, estimate in enumerate(column):
            assert abs(hessian[m][k] - estimate) <= 1e-4 * scale + rounding, (
                m, k, hessian[m][k], estimate)
        assert all(hessian[m][k] == hessian[k][m] for m in range(len(inputs)))


# Each op with curvature, alone in a program at a point where its second partials are
# nonzero: the comparison above must see a wrong second partial in the oracle.
CURVED = sorted(name for name, rule in reference.RULES.items()
                if rule.second_partials is not reference.RULES["add"].second_partials)


@pytest.mark.parametrize("name", CURVED)
def test_a_wrong_second_partial_in_the_reference_is_caught(name, monkeypatch):
    program, inputs, direction = [(name, 0, 1, 2.0)], [0.7, -0.4], [1.0, 0.5]
    assert second_order_mismatches(program, inputs, direction) == []
    rule = reference.RULES[name]

    def scaled(*row):
        return tuple(1.5 * second for second in rule.second_partials(*row))

    monkeypatch.setitem(reference.RULES, name, reference.Rule(rule.partials, scaled))
    mismatches = second_order_mismatches(program, inputs, direction)
    assert {what for what, _, _ in mismatches} == {"hvp", "hessian"}


def second_partials(ns, name, a, b):
    """The Hessian of op ``name`` at (a, b), flattened: its second partials."""
    def function(x):
        return RAW_OPS[name](ns, x[0], x[1])

    if ns is wengert:
        return [float(h) for h in np.ravel(wengert.hessian(function)(np.array([a, b])))]
    return sum(reference.hessian(function)([a, b]), [])


@given(st.sampled_from(sorted(RAW_OPS)), operands, operands)
@example("atan2", 0.0, 0.0)             # conventions: zero second partials at the origin ...
@example("hypot", 0.0, 0.0)
@example("pow", 0.0, 0.5)               # ... no log(0) at a = 0
@example("abs", math.nan, 1.0)          # linear on each piece: zero, even at nan
@example("maximum", 2.0, 2.0)
@example("atan2", 1e-100, 1e-100)       # r*r still normal
def test_every_op_second_partials_match_reference_everywhere(name, a, b):
    for got, want in zip(second_partials(wengert, name, a, b),
                         second_partials(reference, name, a, b)):
        assert close(got, want, rel=1e-12, abs_=1e-300), (got, want)


# Found by these tests against the reference (now fixed in the op table): atan2's second
# partials formed 1 / (r*r) and a*b, which left the normal range, and expm1's partial
# was expm1(a) + 1, which lost the small exp(a) for a << 0.
@pytest.mark.parametrize("a, b", [(0.0, 1e-200), (1e-200, 1e-160), (0.5, -1e300),
                                  (1e-310, 5e-17)])
def test_atan2_second_partials_outside_the_normal_range(a, b):
    for got, want in zip(second_partials(wengert, "atan2", a, b),
                         second_partials(reference, "atan2", a, b)):
        assert close(got, want, rel=1e-12, abs_=1e-300), (got, want)
    r = math.hypot(a, b)
    assert second_partials(wengert, "atan2", a, b)[1] == pytest.approx(
        (a / r - b / r) * (a / r + b / r) / r / r, rel=1e-12)


@pytest.mark.parametrize("order", ["gradient", "hessian"])
def test_expm1_partials_far_below_zero(order):
    a = -384.0
    got = (run_op(wengert, "expm1", a, 0.0)[1] if order == "gradient"
           else second_partials(wengert, "expm1", a, 0.0)[0])
    assert math.isclose(got, math.exp(a), rel_tol=1e-12)
