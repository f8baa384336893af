"""grad, value_and_grad and jacobian: results, argument handling and errors."""

import math
import threading

import numpy as np
import pytest

import wengert as wg


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def rosenbrock_gradient(x):
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def test_issue_example():
    df = wg.value_and_grad(lambda v: wg.sin(v[0]) * v[1] + v[1] ** 2)
    value, gradient = df(np.array([0.5, 2.0]))
    assert type(value) is float and value == pytest.approx(math.sin(0.5) * 2 + 4, rel=1e-15)
    assert gradient.dtype == np.float64 and gradient.shape == (2,)
    np.testing.assert_allclose(gradient, [math.cos(0.5) * 2, math.sin(0.5) + 4], rtol=1e-15)


def test_scalar_argument_gives_float_gradient():
    gradient = wg.grad(lambda x: x ** 3 + wg.exp(x))(1.0)
    assert type(gradient) is float and gradient == pytest.approx(3 + math.e, rel=1e-15)
    assert wg.grad(lambda x: x * x)(3) == 6.0          # ints are accepted


def test_rosenbrock_gradient_matches_closed_form():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=30)
    value, gradient = wg.value_and_grad(rosenbrock)(x)
    assert value == pytest.approx(rosenbrock(list(x)), rel=1e-13)
    np.testing.assert_allclose(gradient, rosenbrock_gradient(x), rtol=1e-12)


def test_sequence_argument_supports_len_indexing_slicing_and_iteration():
    seen = {}

    def fun(v):
        seen["len"] = len(v)
        return v[0] * sum(v[1:]) + sum(x * x for x in v) + v[-1]

    gradient = wg.grad(fun)([1.0, 2.0, 3.0])
    assert seen["len"] == 3
    np.testing.assert_array_equal(gradient, [5.0 + 2.0, 1.0 + 4.0, 1.0 + 6.0 + 1.0])
    assert wg.grad(fun)((1.0, 2.0, 3.0)).tolist() == gradient.tolist()


def test_matrix_argument_keeps_its_shape():
    w = np.arange(6.0).reshape(2, 3)
    gradient = wg.grad(lambda m: sum(m[i][j] ** 2 for i in range(2) for j in range(3)))(w)
    assert gradient.shape == (2, 3)
    np.testing.assert_array_equal(gradient, 2 * w)


def test_argnums_and_pass_through_arguments():
    def fun(a, b, c, scale=1.0):
        return scale * (a * b[0] + b[1] * c)

    assert wg.grad(fun, argnums=1)(2.0, [3.0, 4.0], 5.0, scale=2.0).tolist() == [4.0, 10.0]
    ga, gc = wg.grad(fun, argnums=(0, 2))(2.0, [3.0, 4.0], 5.0)
    assert (ga, gc) == (3.0, 4.0)
    assert wg.grad(fun, argnums=-1)(2.0, [3.0, 4.0], 5.0) == 4.0


def test_untouched_arguments_are_passed_as_they_are():
    marker = object()

    def fun(x, extra):
        assert extra is marker
        return x * 2.0

    assert wg.grad(fun)(1.0, marker) == 2.0


def test_output_independent_of_input_gets_zero_gradient():
    assert wg.grad(lambda x: 3.0)(1.0) == 0.0
    assert wg.grad(lambda x, y: x * 2.0, argnums=1)(1.0, 5.0) == 0.0
    np.testing.assert_array_equal(wg.grad(lambda v: v[0] * 2.0)([1.0, 2.0]), [2.0, 0.0])
    value, gradient = wg.value_and_grad(lambda v: 7)([1.0, 2.0])
    assert value == 7.0 and gradient.tolist() == [0.0, 0.0]


def test_has_aux():
    def fun(x):
        y = x * x
        return y, {"half": y / 2.0, "note": "ok"}

    (value, aux), gradient = wg.value_and_grad(fun, has_aux=True)(3.0)
    assert (value, gradient) == (9.0, 6.0)
    assert aux == {"half": 4.5, "note": "ok"} and type(aux["half"]) is float
    gradient, aux = wg.grad(fun, has_aux=True)(3.0)
    assert gradient == 6.0 and aux["half"] == 4.5
    with pytest.raises(TypeError, match="pair"):
        wg.grad(lambda x: x, has_aux=True)(1.0)


def test_non_scalar_output_points_to_jacobian():
    with pytest.raises(TypeError, match="scalar-output.*jacobian"):
        wg.grad(lambda v: [v[0], v[1]])([1.0, 2.0])
    with pytest.raises(TypeError, match="scalar-output"):
        wg.value_and_grad(lambda v: np.array(v, dtype=object))([1.0, 2.0])


@pytest.mark.parametrize("argnums, error", [(2, ValueError), ((0, 0), ValueError),
                                            (1.0, TypeError), ((), ValueError),
                                            (True, TypeError)])
def test_bad_argnums(argnums, error):
    with pytest.raises(error, match="argnums"):
        wg.grad(lambda x, y: x * y, argnums=argnums)(1.0, 2.0)


@pytest.mark.parametrize("argument", ["1.0", None, [1.0, "a"], np.array([True]), 1 + 2j,
                                      [[1.0], [2.0, 3.0]], object()])
def test_non_numeric_differentiated_argument(argument):
    with pytest.raises(TypeError, match="argument 0"):
        wg.grad(lambda x: 1.0)(argument)


def test_grad_of_a_non_callable():
    with pytest.raises(TypeError, match="callable"):
        wg.grad(3.0)


def test_nested_grad_is_refused_clearly():
    with pytest.raises(TypeError, match="nested differentiation"):
        wg.grad(wg.grad(lambda x: x * x))(1.0)


def test_jacobian():
    def fun(v):
        return [v[0] * v[1], wg.sin(v[0]), v[1] ** 2, 4.0]

    jacobian = wg.jacobian(fun)(np.array([0.5, 2.0]))
    expected = [[2.0, 0.5], [math.cos(0.5), 0.0], [0.0, 4.0], [0.0, 0.0]]
    assert jacobian.shape == (4, 2) and jacobian.dtype == np.float64
    np.testing.assert_allclose(jacobian, expected, rtol=1e-15)
    # rows agree with per-output gradients
    for k in range(3):
        row = wg.grad(lambda v, k=k: fun(v)[k])(np.array([0.5, 2.0]))
        np.testing.assert_array_equal(jacobian[k], row)


def test_jacobian_shapes():
    assert wg.jacobian(lambda x: [x, x * x, x * x * x])(2.0).tolist() == [1.0, 4.0, 12.0]
    assert wg.jacobian(lambda v: v[0] * v[1])([2.0, 3.0]).tolist() == [3.0, 2.0]
    ja, jb = wg.jacobian(lambda a, b: [a * b[0], b[1]], argnums=(0, 1))(2.0, [3.0, 4.0])
    assert ja.tolist() == [3.0, 0.0] and jb.tolist() == [[2.0, 0.0], [0.0, 1.0]]
    numpy_output = wg.jacobian(lambda v: np.array(v, dtype=object) * 2.0)([1.0, 2.0])
    assert numpy_output.tolist() == [[2.0, 0.0], [0.0, 2.0]]


def test_calls_are_independent_and_leave_no_current_tape_behind():
    before = wg.current_tape()
    df = wg.value_and_grad(lambda x: x * x)
    assert [df(float(k))[1] for k in range(3)] == [0.0, 2.0, 4.0]
    assert wg.current_tape() is before and len(before) == 0


def test_reentrant_calls():
    inner = wg.grad(lambda x: x * x)

    def outer(x):
        return x * inner(3.0)           # a nested, independent gradient computation

    assert wg.grad(outer)(2.0) == 6.0


def test_thread_safety():
    df = wg.value_and_grad(rosenbrock)
    rng = np.random.default_rng(1)
    points = [rng.uniform(-1, 1, size=20) for _ in range(8)]
    expected = [df(p) for p in points]
    results = [None] * len(points)

    def worker(k):
        for _ in range(20):
            results[k] = df(points[k])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(points))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (value, gradient), (expected_value, expected_gradient) in zip(results, expected):
        assert value == expected_value
        np.testing.assert_array_equal(gradient, expected_gradient)


def test_closure_over_a_variable_of_another_tape_is_reported():
    outside = wg.Tape().var(2.0)
    with pytest.raises(ValueError, match="different tapes"):
        wg.grad(lambda x: x * outside)(1.0)
