"""wengert.optimize.minimize: scipy.optimize with exact derivatives from a recording."""

import doctest
import sys
import warnings

import numpy as np
import pytest
import scipy.optimize

import wengert as wg
from wengert import optimize
from wengert.optimize import minimize


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def test_doctests():
    result = doctest.testmod(optimize, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "CG", "Newton-CG", "trust-ncg",
                                    "trust-krylov", "trust-exact", "dogleg", "trust-constr",
                                    None])
def test_rosenbrock_converges_with_every_derivative_method(method):
    x0 = np.zeros(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # e.g. "method X does not use hessp"
        result = minimize(rosenbrock, x0, method=method, options={"maxiter": 5000})
    assert isinstance(result, scipy.optimize.OptimizeResult)
    assert result.success, result.message
    assert np.abs(result.x - 1.0).max() < 1e-4
    assert result.fun < 1e-8
    assert result.retapes == 0


def test_second_order_methods_get_hessian_vector_products_or_the_hessian():
    x0 = np.zeros(10)
    trust_ncg = minimize(rosenbrock, x0, method="trust-ncg")
    assert trust_ncg.nhev > 0                   # hessp was wired and used
    trust_exact = minimize(rosenbrock, x0, method="trust-exact")
    assert trust_exact.nhev > 0
    bfgs = minimize(rosenbrock, x0, method="BFGS")
    assert bfgs.njev == bfgs.nfev               # value and gradient in one call (jac=True)
    # exact derivatives: Newton-type steps need far fewer iterations than BFGS
    assert trust_exact.nit < bfgs.nit


def test_gradient_free_methods_get_no_derivatives():
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # scipy warns when given an unused jac
        result = minimize(lambda x: (x[0] - 1) ** 2 + (x[1] + 2) ** 2, [0.0, 0.0],
                          method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    assert result.x == pytest.approx([1.0, -2.0], abs=1e-6)


def test_args_bounds_and_constraints_pass_through():
    def distance(x, centre):
        return (x[0] - centre[0]) ** 2 + (x[1] - centre[1]) ** 2

    free = minimize(distance, [0.0, 0.0], args=((3.0, 2.0),), method="BFGS")
    assert free.x == pytest.approx([3.0, 2.0], abs=1e-6)
    boxed = minimize(distance, [0.0, 0.0], args=((3.0, 2.0),), bounds=[(0, 1), (0, 1)])
    assert boxed.x == pytest.approx([1.0, 1.0], abs=1e-8)
    # the projection of (3, 2) on x0 + x1 <= 1 is (1, 0)
    constrained = minimize(distance, [0.0, 0.0], args=((3.0, 2.0),), method="SLSQP",
                           constraints=[{"type": "ineq", "fun": lambda x: 1 - x[0] - x[1]}])
    assert constrained.x == pytest.approx([1.0, 0.0], abs=1e-6)


def test_branch_changes_are_recorded_again():
    def piecewise(x):
        # continuous, minimum at x = 1; recorded at x = -3 on the other branch
        return (x[0] - 1) ** 2 if x[0] > 0 else x[0] ** 2 - 2 * x[0] + 1

    result = minimize(piecewise, [-3.0], method="BFGS")
    assert result.x == pytest.approx([1.0], abs=1e-6)
    assert result.retapes >= 1
    with pytest.raises(wg.BranchChanged):
        minimize(piecewise, [-3.0], method="BFGS", retape=False)


def test_piecewise_use_with_a_recorded_function():
    F = wg.record(rosenbrock, np.zeros(6))
    result = scipy.optimize.minimize(F.value_and_grad, np.zeros(6), jac=True, hessp=F.hvp,
                                     method="trust-ncg")
    assert result.success and np.abs(result.x - 1).max() < 1e-6


def test_errors():
    with pytest.raises(ValueError, match="x0 must be a number or a non-empty 1-D array"):
        minimize(rosenbrock, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="scalar function"):
        minimize(lambda x: [x[0], x[1]], [1.0, 2.0])


def test_missing_scipy_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    with pytest.raises(ImportError, match="pip install scipy"):
        minimize(rosenbrock, np.zeros(3))
