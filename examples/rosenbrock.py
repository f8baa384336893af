"""Rosenbrock's function in n = 100 dimensions, minimised with scipy through wengert.

wengert.optimize.minimize (wg.minimize) records the function once and hands
scipy the exact gradient (BFGS) and exact Hessian-vector products
(trust-ncg), each replayed in C.  Needs scipy.

    python examples/rosenbrock.py --n 100
"""

import argparse
import time

import numpy as np

from wengert.optimize import minimize


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    options = parser.parse_args(argv)

    x0 = np.ones(options.n)
    x0[::2] = -1.2                      # the classic start (-1.2, 1), repeated
    results = {}
    for method in ("BFGS", "trust-ncg"):
        start = time.perf_counter()
        result = minimize(rosenbrock, x0, method=method, options={"maxiter": 10_000})
        seconds = time.perf_counter() - start
        error = float(np.abs(result.x - 1.0).max())
        print(f"{method:9s}: {result.message}")
        print(f"           {result.nit} iterations, {result.nfev} function and "
              f"{result.njev} gradient evaluations"
              + (f", {result.nhev} Hessian-vector products" if "nhev" in result else "")
              + f"; f = {result.fun:.3g}, max |x - 1| = {error:.2g}, {seconds:.2f} s")
        results[method] = result
    return results


if __name__ == "__main__":
    main()
