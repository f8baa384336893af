"""wengert.optim: SGD and Adam against closed-form updates."""

import doctest

import numpy as np
import pytest

import wengert as wg
from wengert import optim

CURVATURE = np.array([1.0, 3.0, 0.5])
TARGET = np.array([2.0, -1.0, 0.25])


def quadratic_problem(start):
    """f(w) = sum(c_i / 2 (w_i - t_i)^2): gradient c (w - t), in closed form."""
    tape = wg.Tape()
    parameters = tape.variables(start)
    mark = tape.mark()

    def backward():
        tape.rewind(mark)
        loss = sum(c / 2 * (w - t) ** 2 for c, w, t in zip(CURVATURE, parameters, TARGET))
        loss.backward()

    return parameters, backward


def values(parameters):
    return np.array([p.value for p in parameters])


def test_doctests():
    result = doctest.testmod(optim, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.5, 0.1)])
def test_sgd_matches_the_closed_form_update(momentum, weight_decay):
    start = np.array([0.0, 1.0, -2.0])
    parameters, backward = quadratic_problem(start)
    optimizer = optim.SGD(parameters, lr=0.1, momentum=momentum, weight_decay=weight_decay)
    w, buffer = start.copy(), None
    for _ in range(25):
        backward()
        optimizer.zero_grad()
        optimizer.step()
        g = CURVATURE * (w - TARGET) + weight_decay * w
        buffer = g if buffer is None else momentum * buffer + g
        w = w - 0.1 * (buffer if momentum else g)
        assert values(parameters) == pytest.approx(w, rel=1e-13, abs=1e-15)
    assert optimizer.steps == 25


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_the_closed_form_update(weight_decay):
    start = np.array([0.0, 1.0, -2.0])
    parameters, backward = quadratic_problem(start)
    optimizer = optim.Adam(parameters, lr=0.05, betas=(0.8, 0.99), eps=1e-6,
                           weight_decay=weight_decay)
    w, m, v = start.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, 41):
        backward()
        optimizer.step()
        g = CURVATURE * (w - TARGET) + weight_decay * w
        m = 0.8 * m + 0.2 * g
        v = 0.99 * v + 0.01 * g * g
        w = w - 0.05 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.99 ** t)) + 1e-6)
        assert values(parameters) == pytest.approx(w, rel=1e-12, abs=1e-15)


def test_first_adam_step_moves_each_parameter_by_lr():
    parameters, backward = quadratic_problem(np.array([0.0, 1.0, -2.0]))
    optimizer = optim.Adam(parameters, lr=0.01, eps=0.0)
    backward()
    optimizer.step()
    # m_hat / sqrt(v_hat) = g / |g| on the first step
    assert values(parameters) == pytest.approx([0.01, 0.99, -1.99], rel=1e-14)


def test_learning_rate_can_change_between_steps():
    parameters, backward = quadratic_problem(np.zeros(3))
    optimizer = optim.SGD(parameters, lr=0.1)
    backward()
    optimizer.lr = 0.5
    optimizer.step()
    assert values(parameters) == pytest.approx(0.5 * CURVATURE * TARGET)
    optimizer.lr = -1.0
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        optimizer.step()


def test_optimizers_reach_the_minimum():
    for optimizer_class, options in ((optim.SGD, {"lr": 0.3, "momentum": 0.5}),
                                     (optim.Adam, {"lr": 0.05})):
        parameters, backward = quadratic_problem(np.zeros(3))
        optimizer = optimizer_class(parameters, **options)
        for _ in range(600):
            backward()
            optimizer.step()
        assert values(parameters) == pytest.approx(TARGET, abs=1e-4)


@pytest.mark.parametrize("build, error, message", [
    (lambda p: optim.SGD([], lr=0.1), ValueError, "got no parameters"),
    (lambda p: optim.SGD([1.0], lr=0.1), TypeError, "not a wengert Var"),
    (lambda p: optim.SGD([p[0] * 2.0], lr=0.1), ValueError, "cannot be optimised"),
    (lambda p: optim.SGD(p, lr=0.0), ValueError, "lr must be"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=1.0), ValueError, "momentum must be"),
    (lambda p: optim.Adam(p, betas=(0.9,)), ValueError, "betas must be a pair"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.5)), ValueError, r"betas\[1\] must be"),
    (lambda p: optim.Adam(p, eps=float("nan")), ValueError, "eps must be"),
])
def test_argument_errors(build, error, message):
    parameters = wg.Tape().variables([1.0, 2.0])
    with pytest.raises(error, match=message):
        build(parameters)


def test_repr():
    assert repr(optim.Adam(wg.Tape().variables([1.0]), lr=0.5)) == "Adam(1 parameters, lr=0.5)"
