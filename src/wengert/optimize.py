"""``minimize``: ``scipy.optimize.minimize`` with exact derivatives from wengert.

``fun`` is recorded once with ``wengert.record`` and replayed in C at every
point scipy asks for: value and gradient together (``jac=True``), and
Hessian-vector products (``hessp``) or the Hessian (``hess``) for the methods
that use them.  Where ``fun`` takes another branch of its Python control flow
the recording is redone automatically.  scipy is an optional dependency,
imported when ``minimize`` is called.  Plain Python over the public API.
"""

import numpy as np

from wengert.recorded import record

__all__ = ["GRADIENT_METHODS", "HESSP_METHODS", "HESS_METHODS", "minimize"]

#: Methods that use a gradient: they get ``jac=True`` (value and gradient in one call).
GRADIENT_METHODS = frozenset({"cg", "bfgs", "newton-cg", "l-bfgs-b", "tnc", "slsqp", "dogleg",
                              "trust-ncg", "trust-krylov", "trust-exact", "trust-constr"})
#: Methods that take Hessian-vector products: they get ``hessp``.
HESSP_METHODS = frozenset({"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"})
#: Methods that need the full Hessian: they get ``hess``.
HESS_METHODS = frozenset({"dogleg", "trust-exact"})

SCIPY_MISSING = ("wengert.minimize needs scipy, which is not installed: "
                 "pip install scipy")


def _scipy_optimize():
    try:
        import scipy.optimize
    except ImportError:
        raise ImportError(SCIPY_MISSING) from None
    return scipy.optimize


def minimize(fun, x0, args=(), method=None, *, bounds=None, constraints=(), tol=None,
             callback=None, options=None, retape=True):
    """Minimise a scalar function of n numbers with ``scipy.optimize.minimize``.

    Args:
        fun: ``fun(x, *args)`` with ``x`` a list of n Vars, returning a scalar;
            written with wengert's operators and functions, Python control
            flow allowed.
        x0: The starting point: a 1-D array-like of n numbers (or a number).
        args: Extra positional arguments passed to ``fun`` unchanged (constants).
        method: A scipy method name (``"BFGS"``, ``"L-BFGS-B"``, ``"trust-ncg"``,
            ``"SLSQP"``, ...) or a callable; ``None`` lets scipy choose
            (BFGS, L-BFGS-B with bounds, SLSQP with constraints).  Gradient
            methods get the exact gradient; ``Newton-CG``, ``trust-ncg``,
            ``trust-krylov`` and ``trust-constr`` get exact Hessian-vector
            products; ``dogleg`` and ``trust-exact`` the exact Hessian.
        bounds, constraints, tol, callback, options: Passed to scipy unchanged.
        retape: Record ``fun`` again where its branches change (``False``
            raises ``wengert.BranchChanged`` instead).

    Returns:
        scipy's ``OptimizeResult`` (``x``, ``fun``, ``nit``, ``nfev``, ...),
        with ``retapes``, the number of times ``fun`` was recorded again.

    Raises:
        ImportError: scipy is not installed.
        ValueError: ``x0`` is not a non-empty 1-D array of numbers.

    >>> import numpy as np
    >>> import wengert as wg
    >>> from wengert.optimize import minimize
    >>> def rosenbrock(x):
    ...     return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    ...                for i in range(len(x) - 1))
    >>> result = minimize(rosenbrock, np.zeros(5), method="trust-ncg", options={"gtol": 1e-10})
    >>> result.success, result.nit < 60, bool(np.abs(result.x - 1.0).max() < 1e-9)
    (True, True, True)
    """
    optimize = _scipy_optimize()
    start = np.asarray(x0, dtype=np.float64)
    if start.ndim > 1 or start.size == 0:
        raise ValueError(f"x0 must be a number or a non-empty 1-D array, got shape {start.shape}")
    start = start.reshape(-1)
    if not isinstance(args, tuple):
        args = (args,)
    objective = (lambda x: fun(x, *args)) if args else fun
    recorded = record(objective, start, retape=retape)
    if recorded.n_outputs != 1:
        raise TypeError(f"minimize needs a scalar function; fun returns {recorded.n_outputs} "
                        "values")

    name = method.lower() if isinstance(method, str) else None
    keywords = {}
    if method is None or callable(method) or name in GRADIENT_METHODS:
        keywords["jac"] = True
        objective_for_scipy = recorded.value_and_grad
    else:
        objective_for_scipy = recorded                   # derivative-free method: values only
    if name in HESSP_METHODS:
        keywords["hessp"] = recorded.hvp
    elif name in HESS_METHODS:
        keywords["hess"] = recorded.hessian
    result = optimize.minimize(objective_for_scipy, start, method=method, bounds=bounds,
                               constraints=constraints, tol=tol, callback=callback,
                               options=options, **keywords)
    result["retapes"] = recorded.retapes
    return result
