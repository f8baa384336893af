"""The standard benchmark workloads, written once for every scalar type.

Each workload is a plain Python function ``f(x, m)``: ``x`` is a list of
scalars (plain floats, wengert ``Var``, reference-engine variables, micrograd
``Value``) and ``m`` is a namespace of math functions for that scalar type
(``m.sin``, ``m.tanh``, ...).  Every engine therefore runs the very same code
and records the very same elementary operations, which is what makes timings
comparable across engines.

The namespaces:

* ``FLOAT_MATH``: plain floats, functions from :mod:`math`.
* ``wengert_math()``: the ``wengert`` module itself.
* ``reference_math()``: ``wengert.reference``, the pure-Python engine.
* ``micrograd_math()``: micrograd's ``Value`` methods as functions; only the
  ones the installed micrograd has (0.1.0 has ``relu`` and no ``sin``), so
  workloads that need something else are unsupported there (see
  :meth:`Workload.supports`).
* ``casadi_math()``: CasADi's functions, for ``x`` a list of ``SX`` elements.
* ``jax_math()``: ``jax.numpy``'s functions, for ``x`` a traced jax array
  (the workloads only index it, ``x[i]``, and take ``len(x)``).

Each workload also knows how many elementary operations (arithmetic operators
and math-function calls on scalars) one evaluation performs; the benchmark
divides times by it to report nanoseconds per op, and a test checks it with a
counting scalar type.

Example:
    >>> from wengert.workloads import FLOAT_MATH, get_workload
    >>> workload = get_workload("rosenbrock-10")
    >>> workload.ops, len(workload.x0)
    (71, 10)
    >>> workload.f(workload.x0, FLOAT_MATH) > 0
    True
"""

import math
import random
import types
from dataclasses import dataclass, field
from collections.abc import Callable, Sequence

__all__ = [
    "FLOAT_MATH",
    "WORKLOADS",
    "Workload",
    "casadi_math",
    "chain",
    "fanout",
    "get_workload",
    "jax_math",
    "micrograd_math",
    "mlp",
    "mlp_data",
    "reference_math",
    "rosenbrock",
    "wengert_math",
]


# ---------------------------------------------------------------------------
# Math namespaces
# ---------------------------------------------------------------------------

FLOAT_MATH = types.SimpleNamespace(
    exp=math.exp,
    log=math.log,
    sqrt=math.sqrt,
    sin=math.sin,
    cos=math.cos,
    tanh=math.tanh,
)
"""Math functions for plain floats, the floor every engine is compared with."""


def wengert_math():
    """Returns the ``wengert`` module, whose math functions take ``Var``."""
    import wengert

    return wengert


def reference_math():
    """Returns ``wengert.reference``, the pure-Python engine's namespace."""
    from wengert import reference

    return reference


def micrograd_math():
    """Returns micrograd's ``Value`` methods as a namespace of functions.

    Only the methods the installed micrograd defines are present: micrograd
    0.1.0 from PyPI has ``relu`` only (no ``tanh``, ``exp`` or ``sin``), later
    versions add ``tanh`` and ``exp``.

    Raises:
        ImportError: micrograd is not installed (``pip install micrograd``).
    """
    from micrograd.engine import Value

    namespace = types.SimpleNamespace()
    for name in ("exp", "log", "sqrt", "sin", "cos", "tanh", "relu"):
        method = getattr(Value, name, None)
        if method is not None:
            setattr(namespace, name, method)
    return namespace


_MATH_NAMES = ("exp", "log", "sqrt", "sin", "cos", "tanh")


def casadi_math():
    """Returns CasADi's math functions (``casadi.sin``, ...) as a namespace.

    Raises:
        ImportError: CasADi is not installed (``pip install casadi``).
    """
    import casadi

    return types.SimpleNamespace(**{name: getattr(casadi, name) for name in _MATH_NAMES})


def jax_math():
    """Returns ``jax.numpy``'s math functions (``jnp.sin``, ...) as a namespace.

    Raises:
        ImportError: JAX is not installed (``pip install jax``).
    """
    import jax.numpy as jnp

    return types.SimpleNamespace(**{name: getattr(jnp, name) for name in _MATH_NAMES})


# ---------------------------------------------------------------------------
# The workload functions
# ---------------------------------------------------------------------------

def chain(x, m, steps):
    """A long dependent chain: ``steps`` times ``y = y + 0.001 * sin(y) + 0.01``.

    4 ops and 4 tape rows per step (the constants 0.001 and 0.01 are two rows
    recorded by the first step and reused by the others: ``Tape``'s constant pool).  The graph is as
    deep as it is long, which is what breaks recursive topological sorts.  y
    drifts up by about 0.01 a step, so the steps' derivatives
    ``1 + 0.001 * cos(y)`` average out and d y / d x[0] stays near 1: the
    adjoints never underflow into subnormal numbers (which x86 handles in
    microcode, tens of times slower), and the gradient checks something.
    """
    y = x[0]
    for _ in range(steps):
        y = y + 0.001 * m.sin(y) + 0.01
    return y


def rosenbrock(x, m):
    """The n-dimensional Rosenbrock function.

    ``sum(100 * (x[i+1] - x[i]**2)**2 + (1 - x[i])**2 for i in range(n - 1))``,
    7 ops per term plus n - 2 additions joining the terms: 8n - 9 ops.
    """
    total = None
    for i in range(len(x) - 1):
        term = 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
        # Start from the first term rather than 0 so every op is on scalars.
        total = term if total is None else total + term
    return total


MLP_SIZES = (2, 16, 16, 1)
MLP_POINTS = 32


def _mlp_parameter_count(sizes):
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:]))


def mlp_data(points=MLP_POINTS, seed=0):
    """The fixed training set of the ``mlp`` workload.

    ``points`` inputs drawn uniformly from [-1, 1]^2 by ``random.Random(seed)``,
    labelled +1 or -1 by the sign of ``x0 * x1`` (an XOR pattern).

    Returns:
        A list of ``((x0, x1), label)`` pairs of floats.
    """
    rng = random.Random(seed)
    data = []
    for _ in range(points):
        point = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0))
        data.append((point, 1.0 if point[0] * point[1] > 0 else -1.0))
    return data


_MLP_DATA = mlp_data()


def mlp(x, m, data=_MLP_DATA, sizes=MLP_SIZES):
    """Squared loss of a micrograd-style tanh MLP; the weights are the inputs.

    ``x`` holds the parameters layer by layer, neuron by neuron, each neuron's
    weights followed by its bias (337 numbers for 2-16-16-1).  Hidden layers
    apply ``tanh``, the output layer is linear, as in micrograd's ``nn.MLP``.
    The loss is ``sum((output - label)**2)`` over ``data``.

    Ops per point: per neuron with ``k`` inputs, ``k`` multiplications, ``k``
    additions onto the bias and one ``tanh`` in hidden layers; plus 2 for the
    squared error.  Plus ``len(data) - 1`` additions joining the points.
    """
    if len(x) != _mlp_parameter_count(sizes):
        raise ValueError(
            f"mlp needs {_mlp_parameter_count(sizes)} parameters for layer "
            f"sizes {sizes}, got {len(x)}"
        )
    loss = None
    for point, label in data:
        activations = list(point)
        position = 0
        last_layer = len(sizes) - 2
        for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            outputs = []
            for _ in range(n_out):
                weights = x[position:position + n_in]
                activation = x[position + n_in]  # the bias
                position += n_in + 1
                for weight, value in zip(weights, activations):
                    activation = activation + weight * value
                if layer != last_layer:
                    activation = m.tanh(activation)
                outputs.append(activation)
            activations = outputs
        error = (activations[0] - label) ** 2
        loss = error if loss is None else loss + error
    return loss


def fanout(x, m):
    """``sum((x[i] + x[i+1]) * x[i+2])`` over overlapping triples.

    Every input feeds up to three rows, so adjoints must accumulate.  2 ops
    per triple plus ``triples - 1`` additions; ``len(x) - 2`` triples.
    """
    total = None
    for i in range(len(x) - 2):
        term = (x[i] + x[i + 1]) * x[i + 2]
        total = term if total is None else total + term
    return total


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """One benchmark workload.

    Attributes:
        name: the name used on the command line, e.g. ``"chain-10k"``.
        f: the function ``f(x, m)`` of a list of scalars and a math namespace,
            returning one scalar.
        x0: the deterministic starting point, a list of floats.
        ops: elementary operations (operators and math calls on scalars) one
            evaluation of ``f`` performs.
        needs: names of the math functions ``f`` calls on ``m``.
        description: one line for humans.
    """

    name: str
    f: Callable
    x0: Sequence[float]
    ops: int
    needs: frozenset = field(default_factory=frozenset)
    description: str = ""

    def supports(self, namespace):
        """Whether ``namespace`` has every math function this workload calls."""
        return all(hasattr(namespace, name) for name in self.needs)

    def missing(self, namespace):
        """The math functions this workload calls that ``namespace`` lacks."""
        return sorted(name for name in self.needs if not hasattr(namespace, name))

    def __repr__(self):
        return f"Workload({self.name!r}, inputs={len(self.x0)}, ops={self.ops})"


def _chain_workload(name, rows):
    steps = -(-(rows - 3) // 4)            # 4 tape rows per step, after the input and 2 constants

    def f(x, m):
        return chain(x, m, steps)

    f.__name__ = f.__qualname__ = f"chain_{name.split('-')[1]}"
    return Workload(
        name=name,
        f=f,
        x0=[0.5],
        ops=4 * steps,
        needs=frozenset({"sin"}),
        description=f"{steps:,} steps of y = y + 0.001 * sin(y) + 0.01 ({4 * steps + 3:,} rows)",
    )


def _rosenbrock_workload(n):
    return Workload(
        name=f"rosenbrock-{n}",
        f=rosenbrock,
        # A classic start away from the minimum at all ones, varied per index.
        x0=[-1.2 + 0.5 * math.sin(i) for i in range(n)],
        ops=8 * n - 9,
        description=f"{n}-dimensional Rosenbrock function",
    )


def _mlp_workload():
    rng = random.Random(1)
    count = _mlp_parameter_count(MLP_SIZES)
    per_point = 2  # (output - label) ** 2
    for layer, (n_in, n_out) in enumerate(zip(MLP_SIZES, MLP_SIZES[1:])):
        hidden = layer != len(MLP_SIZES) - 2
        per_point += n_out * (2 * n_in + (1 if hidden else 0))
    return Workload(
        name="mlp",
        f=mlp,
        x0=[rng.uniform(-1.0, 1.0) for _ in range(count)],
        ops=MLP_POINTS * per_point + MLP_POINTS - 1,
        needs=frozenset({"tanh"}),
        description=f"{'-'.join(map(str, MLP_SIZES))} tanh MLP, squared loss "
        f"over {MLP_POINTS} points, {count} weights as inputs",
    )


def _fanout_workload(triples):
    return Workload(
        name="fanout",
        f=fanout,
        x0=[math.cos(0.1 * i) for i in range(triples + 2)],
        ops=3 * triples - 1,
        description=f"sum((x[i] + x[i+1]) * x[i+2]) over {triples:,} triples",
    )


WORKLOADS = {
    workload.name: workload
    for workload in (
        _chain_workload("chain-10k", 10_000),        # tape rows, as issue 2 counts them
        _chain_workload("chain-1m", 1_000_000),
        _rosenbrock_workload(10),
        _rosenbrock_workload(100),
        _rosenbrock_workload(1000),
        _mlp_workload(),
        _fanout_workload(10_000),
    )
}
"""Every standard workload by name, in the order benchmarks report them."""


def get_workload(name):
    """Returns the workload called ``name``.

    Raises:
        ValueError: no workload has that name; the message lists the names.
    """
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(
            f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}"
        ) from None
