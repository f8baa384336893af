"""Forward mode and second order: jvp, hvp, hessian, eager and replayed."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import wengert as wg
import wengert.reference as reference
from optable import CASES, KINKS


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosenbrock_hessian(x):
    n = len(x)
    H = np.zeros((n, n))
    for i in range(n - 1):
        H[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        H[i + 1, i + 1] += 200
        H[i, i + 1] += -400 * x[i]
        H[i + 1, i] += -400 * x[i]
    return H


def op_function(name):
    case = CASES[name]
    if case.constant_second:
        return lambda v, exponent: case.apply(v[0], exponent), 1
    return (lambda v: case.apply(*v)), len(case.domain)


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_partials_match_differences_of_first_partials(name):
    case = CASES[name]
    function, arity = op_function(name)
    rng = np.random.default_rng(sum(map(ord, name)) + 1)
    checked = 0
    for _ in range(15):
        point = [float(rng.uniform(low, high)) for low, high in case.domain]
        kink = KINKS.get(name)
        if kink and min(abs(d) for d in kink(*point)) < 1e-3:
            continue
        if case.constant_second:
            x, extra = np.array(point[:1]), (point[1],)
        else:
            x, extra = np.array(point), ()
        hessian = wg.hessian(function)(x, *extra)
        gradient = wg.grad(function)
        for j in range(arity):
            step = 1e-5 * max(1.0, abs(x[j]))
            up, down = x.copy(), x.copy()
            up[j] += step
            down[j] -= step
            column = (gradient(up, *extra) - gradient(down, *extra)) / (2 * step)
            np.testing.assert_allclose(hessian[:, j], column, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} at {point}")
        checked += 1
    assert checked >= 8


def test_rosenbrock_hessian_closed_form_and_symmetry():
    x = np.random.default_rng(0).uniform(-1.5, 1.5, size=30)
    H = wg.hessian(rosenbrock)(x)
    np.testing.assert_allclose(H, rosenbrock_hessian(x), rtol=1e-13, atol=1e-10)
    np.testing.assert_array_equal(H, H.T)
    F = wg.record(rosenbrock, np.zeros(30))
    # The eager Hessian takes the lanes, a recorded one its plan: equal to rounding.
    np.testing.assert_allclose(F.hessian(x), H, rtol=1e-15, atol=1e-12)
    np.testing.assert_array_equal(F.hessian(x), F.hessian(x).T)


def test_quadratic_and_product_hessians():
    A = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 4.0]])

    def quadratic(v):
        return 0.5 * sum(A[i, j] * v[i] * v[j] for i in range(3) for j in range(3))

    x = np.array([0.3, -0.7, 1.1])
    np.testing.assert_allclose(wg.hessian(quadratic)(x), A, rtol=1e-15)
    product = wg.hessian(lambda v: v[0] * v[1] * v[2])(x)
    np.testing.assert_allclose(product, [[0, x[2], x[1]], [x[2], 0, x[0]], [x[1], x[0], 0]],
                               rtol=1e-15)
    assert wg.hessian(lambda t: t ** 3)(2.0) == 12.0


def test_hvp_matches_hessian_times_v_and_differences_of_gradients():
    rng = np.random.default_rng(1)
    x, v = rng.uniform(-1, 1, size=20), rng.normal(size=20)
    H = wg.hessian(rosenbrock)(x)
    hv = wg.hvp(rosenbrock)(x, v)
    np.testing.assert_allclose(hv, H @ v, rtol=1e-12, atol=1e-9)
    step = 1e-6
    gradient = wg.grad(rosenbrock)
    np.testing.assert_allclose(hv, (gradient(x + step * v) - gradient(x - step * v)) / (2 * step),
                               rtol=1e-5, atol=1e-4)


def test_jvp_matches_gradient_dot_v_and_jacobian_times_v():
    rng = np.random.default_rng(2)
    x, v = rng.uniform(-1, 1, size=15), rng.normal(size=15)
    value, tangent = wg.jvp(rosenbrock)(x, v)
    assert value == wg.value_and_grad(rosenbrock)(x)[0]
    assert tangent == pytest.approx(wg.grad(rosenbrock)(x) @ v, rel=1e-12)

    def outputs(w):
        return [w[0] * w[1], wg.sin(w[2]), w[3] ** 2 + w[0]]

    y = rng.uniform(-1, 1, size=4)
    direction = rng.normal(size=4)
    values, tangents = wg.jvp(outputs)(y, direction)
    np.testing.assert_allclose(tangents, wg.jacobian(outputs)(y) @ direction, rtol=1e-14)
    assert wg.jvp(lambda t: t ** 3)(2.0, 0.5) == (8.0, 6.0)


def test_forward_mode_jacobian_when_fewer_inputs_than_outputs():
    def many(v):
        return [v[0] * v[1], wg.exp(v[0]), v[1] ** 3, v[0] - v[1], wg.tanh(v[1])]

    F = wg.record(many, np.zeros(2))          # 2 inputs < 5 outputs: tangent sweeps
    x = np.array([0.4, -0.3])
    expected = np.array([wg.grad(lambda v, k=k: many(v)[k])(x) for k in range(5)])
    np.testing.assert_allclose(F.jacobian(x), expected, rtol=1e-15)
    np.testing.assert_allclose(F.jacobian(np.array([x, x])), [expected, expected], rtol=1e-15)


def test_batched_second_order_equals_a_loop():
    F = wg.record(rosenbrock, np.zeros(6))
    rng = np.random.default_rng(3)
    X, V = rng.uniform(-1, 1, size=(40, 6)), rng.normal(size=(40, 6))
    values, tangents = F.jvp(X, V)
    hv = F.hvp(X, V)
    hessians = F.hessian(X[:5])
    for k in range(40):
        value, tangent = F.jvp(X[k], V[k])
        assert values[k] == value and tangents[k] == pytest.approx(tangent, rel=1e-14)
        np.testing.assert_allclose(hv[k], F.hvp(X[k], V[k]), rtol=1e-14)
    for k in range(5):
        np.testing.assert_array_equal(hessians[k], F.hessian(X[k]))


def test_second_order_follows_branches_like_gradients():
    def branchy(v):
        return v[0] ** 3 if v[0] > 0 else v[0] ** 2 * v[1]

    F = wg.record(branchy, np.array([1.0, 1.0]))
    assert F.hessian(np.array([2.0, 5.0])).tolist() == [[12.0, 0.0], [0.0, 0.0]]
    assert F.hessian(np.array([-2.0, 5.0])).tolist() == [[10.0, -4.0], [-4.0, 0.0]]
    assert F.retapes == 1
    assert F.hvp(np.array([-1.0, 3.0]), np.array([1.0, 0.0])).tolist() == [6.0, -2.0]
    G = wg.record(branchy, np.array([1.0, 1.0]), retape=False)
    with pytest.raises(wg.BranchChanged):
        G.hvp(np.array([-1.0, 3.0]), np.array([1.0, 0.0]))
    with pytest.raises(wg.BranchChanged):
        G.hessian(np.array([-1.0, 3.0]))


def test_errors():
    F = wg.record(lambda v: [v[0], v[1]], np.zeros(2))
    with pytest.raises(TypeError, match="jacobian"):
        F.hvp(np.zeros(2), np.ones(2))
    G = wg.record(rosenbrock, np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        G.hvp(np.zeros(3), np.ones(4))
    with pytest.raises(TypeError, match="one argument"):
        wg.hessian(lambda a, b: a * b, argnums=(0, 1))(1.0, 2.0)


@st.composite
def programs(draw):
    unary = ["sin", "tanh", "exp", "sigmoid", "atan", "softplus"]
    steps = []
    for k in range(draw(st.integers(1, 12))):
        i = draw(st.integers(0, 2 + k))
        j = draw(st.integers(0, 2 + k))
        steps.append((draw(st.sampled_from(unary + ["mul", "add", "div1"])), i, j))
    return steps


def run_program(ns, steps, xs):
    nodes = list(xs)
    for name, i, j in steps:
        a, b = nodes[i], nodes[j]
        if name == "mul":
            nodes.append(a * b)
        elif name == "add":
            nodes.append(a + b)
        elif name == "div1":
            nodes.append(a / (1.0 + b * b))
        else:
            nodes.append(getattr(ns, name)(a))
    return sum(nodes[3:], nodes[0] * 0.5)


@given(programs(), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_random_dag_hessians_against_differences_of_reference_gradients(steps, point):
    x = np.array(point)
    H = wg.hessian(lambda v: run_program(wg, steps, v))(x)

    def reference_gradient(y):
        return np.array(reference.grad(lambda v: run_program(reference, steps, v))(list(y)))

    for j in range(3):
        step = 1e-5
        up, down = x.copy(), x.copy()
        up[j] += step
        down[j] -= step
        column = (reference_gradient(up) - reference_gradient(down)) / (2 * step)
        scale = max(1.0, float(np.abs(column).max()))
        assert np.allclose(H[:, j], column, rtol=1e-4, atol=1e-5 * scale), (H[:, j], column)
    assert np.array_equal(H, H.T)


def test_newton_methods_converge_on_rosenbrock_100_faster_than_bfgs():
    # From the origin every method crawls along the curved valley one coordinate at
    # a time; from x = 0.5 the Hessian pays off: Newton methods need 2.6-6x fewer steps.
    optimize = pytest.importorskip("scipy.optimize")
    F = wg.record(rosenbrock, np.zeros(100))
    start = np.full(100, 0.5)
    bfgs = optimize.minimize(F.value_and_grad, start, jac=True, method="BFGS",
                             options={"gtol": 1e-8, "maxiter": 5000})
    assert bfgs.success and math.isclose(bfgs.fun, 0.0, abs_tol=1e-10)
    for method, options, hessian in [("trust-ncg", {"gtol": 1e-8}, {"hessp": F.hvp}),
                                     ("trust-krylov", {"gtol": 1e-8}, {"hessp": F.hvp}),
                                     ("Newton-CG", {"xtol": 1e-12}, {"hessp": F.hvp}),
                                     ("trust-exact", {"gtol": 1e-8}, {"hess": F.hessian})]:
        result = optimize.minimize(F, start, jac=F.grad, method=method, options=options,
                                   **hessian)
        assert result.success, (method, result.message)
        np.testing.assert_allclose(result.x, np.ones(100), atol=1e-5, err_msg=method)
        assert result.nit < bfgs.nit / 2, (method, result.nit, bfgs.nit)
