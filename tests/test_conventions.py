"""Every row of the README's conventions table, on wengert and on the reference engine."""

import math

import pytest

import wengert as wg
import wengert.reference as reference
from readme import convention_rows

ROWS = convention_rows()
FUNCTIONS = ["exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sqrt", "cbrt", "sin",
             "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh",
             "acosh", "atanh", "erf", "erfc", "hypot", "pow", "sigmoid", "relu", "softplus",
             "maximum", "minimum"]


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_the_table_is_there():
    assert len(ROWS) >= 25


@pytest.mark.parametrize("engine", [wg, reference], ids=["wengert", "reference"])
@pytest.mark.parametrize("expression, point, value, derivatives", ROWS,
                         ids=[f"{row[0]} at {row[1]}" for row in ROWS])
def test_convention(engine, expression, point, value, derivatives):
    with engine.Tape():
        variables = dict(zip(point, engine.variables(list(point.values()))))
        namespace = {name: getattr(engine, name) for name in FUNCTIONS}
        output = eval(expression, namespace, variables)
        output.backward()
    assert same(output.value, value), (output.value, value)
    got = tuple(variable.grad for variable in variables.values())
    assert len(got) == len(derivatives)
    assert all(same(a, b) for a, b in zip(got, derivatives)), (got, derivatives)


# Python's own float operators raise (1.0 / 0.0) or go complex ((-8.0) ** 0.5); wengert's
# math functions on plain numbers follow the same IEEE table as the tape.
FUNCTION_ROWS = [row for row in ROWS if "(" in row[0]]


@pytest.mark.parametrize("expression, point, value, derivatives", FUNCTION_ROWS,
                         ids=[f"{row[0]} at {row[1]}" for row in FUNCTION_ROWS])
def test_plain_numbers_give_the_same_value(expression, point, value, derivatives):
    namespace = {name: getattr(wg, name) for name in FUNCTIONS}
    assert same(float(eval(expression, namespace, dict(point))), value)
