"""Plug an autodiff engine into ``python -m wengert bench``: the adapter protocol.

The benchmark runs every engine on the same workloads (``wengert.workloads``):
plain Python functions ``f(x, m)`` of a list of scalars ``x`` and a namespace
``m`` of math functions (``m.sin``, ``m.tanh``, ...).  An engine is a small
adapter class, a subclass of :class:`Engine`, that says how to make its input
scalars, run ``f`` on them, run the reverse sweep and read the value and the
gradient back as floats.  Nothing else is needed: the benchmark checks the
gradient against wengert's and the pure-Python reference engine's, then times
it next to plain floats in a fresh process.

A user's engine runs from the command line by ``module:Class``, the module
importable from the current directory or ``sys.path``::

    python -m wengert bench --engine my_engine:MyEngine --workloads rosenbrock-100,mlp

Example:
    >>> import math, types
    >>> from wengert.bench import Engine, check_engine
    >>> class Floats(Engine):                 # no gradient: only values
    ...     name = "my-floats"
    ...     math = types.SimpleNamespace(sin=math.sin, tanh=math.tanh)
    ...     has_backward = False
    ...     def create_inputs(self, x0):
    ...         return list(x0)
    ...     def backward(self, inputs, output):
    ...         pass
    ...     def value(self, output):
    ...         return output
    ...     def gradient(self, inputs, output):
    ...         return None
    >>> check_engine(Floats(), "rosenbrock-10")[0] > 0
    True
"""

import functools
import importlib
import math

from wengert import workloads as _workloads

__all__ = ["Engine", "EngineMismatch", "check_engine", "load_engine", "relative_error"]

# A value must match plain floats, and a gradient both wengert's and the
# reference engine's, to this normwise relative error.  Engines run the same
# operations in the same order, so in practice they agree to the last bit.
TOLERANCE = 1e-9

# Gradients smaller than this count as zero in the comparison: the chain
# workloads' gradients underflow to a few subnormals (2.5e-323), which engines
# that flush subnormals to zero give as 0.
NEGLIGIBLE = 1e-290


class Engine:
    """An adapter between the benchmark and one autodiff engine; subclass it.

    Required: ``create_inputs``, ``backward``, ``value``, ``gradient``, and
    either a ``math`` namespace or your own ``forward``.  The benchmark calls,
    for each evaluation::

        inputs = engine.create_inputs(x0)         # untimed
        output = engine.forward(workload, inputs) # timed: "record" (forward)
        run = engine.backward_call(inputs, output)  # untimed
        run()                                     # timed: "backward"
        engine.value(output), engine.gradient(inputs, output)  # untimed, checked

    An engine that compiles sets ``replays = True``: ``prepare(workload)`` runs
    once, untimed (tracing, compiling), and then ``forward`` alone returns
    value and gradient in one call, reported in the "replay" column.

    The constructor may raise ``ImportError`` when the library is missing: the
    engine is then listed as skipped, with ``install`` as the advice.

    Attributes:
        name: the engine's name in the table and on the command line.
        math: the namespace of math functions the workloads call, e.g.
            ``torch`` or ``types.SimpleNamespace(sin=..., tanh=...)``; a
            workload needing a function it lacks is reported as unsupported.
        install: how to install the library, shown when it is missing.
        has_backward: False for an engine that only evaluates (plain floats).
        replays: see above.
        points: points evaluated per ``forward`` (a batched engine); times
            are reported per point.
        third_party: failures (a crash, a recursion limit) are reported but do
            not make the exit status 1; a gradient mismatch always does.
        max_ops: workloads with more elementary ops are reported as too slow
            for the engine instead of being run (None: no limit).
    """

    name = None
    math = None
    install = ""
    has_backward = True
    replays = False
    points = 1
    third_party = True
    max_ops = None

    def __init__(self):
        if self.name is None:
            self.name = type(self).__name__.lower()

    def unsupported_reason(self, workload):
        """Why this engine cannot run ``workload``, or None.

        The default: a math function ``workload`` calls is missing from
        ``self.math``, or ``workload.ops`` exceeds ``max_ops``.
        """
        if self.math is not None:
            missing = workload.missing(self.math)
            if missing:
                return f"{self.name} has no {', '.join(missing)}"
        if self.max_ops is not None and workload.ops > self.max_ops:
            return (f"{workload.ops:,} ops is over this engine's limit of "
                    f"{self.max_ops:,} (one evaluation would take too long)")
        return None

    def prepare(self, workload):
        """Once per workload, untimed, before checking and timing: trace or compile."""

    def rows(self):
        """Rows of the prepared recording (to report ns per row), or None."""

    def create_inputs(self, x0):
        """The engine's input scalars for the list of floats ``x0`` (untimed)."""
        raise NotImplementedError(f"{type(self).__name__} must define create_inputs(x0)")

    def forward(self, workload, inputs):
        """Runs the workload on ``inputs``, recording; returns the output.

        The default calls ``workload.f(inputs, self.math)``.
        """
        if self.math is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set math (a namespace of math functions) "
                "or define forward(workload, inputs)")
        return workload.f(inputs, self.math)

    def backward(self, inputs, output):
        """The reverse sweep from ``output``."""
        raise NotImplementedError(f"{type(self).__name__} must define backward(inputs, output)")

    def backward_call(self, inputs, output):
        """A function of no arguments that runs ``backward(inputs, output)``.

        Made untimed; only calling it is timed.  The default wraps ``backward``;
        an engine whose backward pass is one call (``output.backward``) returns
        that bound method, so the timed region holds no adapter code.
        """
        return functools.partial(self.backward, inputs, output)

    def value(self, output):
        """The output's value as a float."""
        raise NotImplementedError(f"{type(self).__name__} must define value(output)")

    def gradient(self, inputs, output):
        """d output / d inputs as a list of floats (after ``backward``), or None."""
        raise NotImplementedError(
            f"{type(self).__name__} must define gradient(inputs, output)")

    def version(self):
        """The engine's version for the report, or None."""

    def __repr__(self):
        return f"<{type(self).__name__} engine {self.name!r}>"


class EngineMismatch(ValueError):
    """An engine's value or gradient disagrees with the expected one."""


def relative_error(actual, expected):
    """Normwise relative error of two equally long lists of floats.

    ``max |a - e| / max |e|``; NaN in the same place in both counts as equal;
    entries below ``NEGLIGIBLE`` in size count as zero.  Returns ``inf`` for a
    length mismatch or a NaN in one list only.
    """
    if actual is None or len(actual) != len(expected):
        return math.inf
    scale = max((abs(e) for e in expected), default=0.0)
    error = 0.0
    for a, e in zip(actual, expected):
        a, e = float(a), float(e)
        if math.isnan(a) and math.isnan(e):
            continue
        difference = abs(a - e)
        if math.isnan(difference):
            return math.inf
        error = max(error, difference)
    if error <= NEGLIGIBLE:
        return 0.0
    return error / scale if scale > 0 else math.inf


def run_once(engine, workload):
    """One untimed evaluation: (value, gradient) as floats."""
    inputs = engine.create_inputs(list(workload.x0))
    output = engine.forward(workload, inputs)
    engine.backward(inputs, output)
    gradient = engine.gradient(inputs, output)
    return float(engine.value(output)), (
        None if gradient is None else [float(g) for g in gradient])


def expected_results(workload):
    """The oracles: plain floats' value, and wengert's and the reference engine's gradients.

    Returns:
        ``(value, {"wengert": gradient, "reference": gradient})``.
    """
    import wengert
    from wengert import reference

    value = float(workload.f(list(workload.x0), _workloads.FLOAT_MATH))
    gradients = {}
    for name, namespace in (("wengert", wengert), ("reference", reference)):
        with namespace.Tape() as tape:
            inputs = tape.variables(list(workload.x0))
            output = workload.f(inputs, namespace)
        tape.backward(output)
        gradients[name] = [float(variable.grad) for variable in inputs]
    return value, gradients


def compare(engine_name, value, gradient, expected_value, expected_gradients):
    """The problems of one engine's results, as a list of sentences (empty: all agree)."""
    problems = []
    error = relative_error([value], [expected_value])
    if error > TOLERANCE:
        problems.append(f"value {value!r} off plain floats' {expected_value!r} "
                        f"by {error:.2g} (relative)")
    if gradient is not None:
        for oracle, expected in expected_gradients.items():
            if oracle == engine_name:
                continue
            error = relative_error(gradient, expected)
            if error > TOLERANCE:
                problems.append(f"gradient off {oracle}'s by {error:.2g} (relative)")
    return problems


def check_engine(engine, workload="rosenbrock-10"):
    """Runs ``engine`` once on ``workload`` and checks it as the benchmark does.

    The value must match plain floats, and the gradient both wengert's and the
    pure-Python reference engine's, to a relative error of ``TOLERANCE``.

    Args:
        engine: an :class:`Engine` instance.
        workload: a workload name from ``wengert.workloads.WORKLOADS`` or a
            ``Workload``.

    Returns:
        ``(value, gradient)`` as a float and a list of floats (None for an
        engine without backward).

    Raises:
        ValueError: the engine does not support the workload.
        EngineMismatch: the value or gradient is wrong; the message says how.
    """
    if isinstance(workload, str):
        workload = _workloads.get_workload(workload)
    reason = engine.unsupported_reason(workload)
    if reason:
        raise ValueError(f"{engine.name} cannot run {workload.name}: {reason}")
    if engine.replays:
        engine.prepare(workload)
    value, gradient = run_once(engine, workload)
    expected_value, expected_gradients = expected_results(workload)
    problems = compare(engine.name, value, gradient, expected_value, expected_gradients)
    if problems:
        raise EngineMismatch(f"{engine.name} on {workload.name}: " + "; ".join(problems))
    return value, gradient


def load_engine(spec):
    """The engine class named by ``"module:Class"`` (``module`` importable).

    Raises:
        ValueError: ``spec`` is not of the form ``module:Class``.
        TypeError: the class is not an :class:`Engine` subclass.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such class.
    """
    module_name, colon, class_name = spec.partition(":")
    if not colon or not module_name or not class_name:
        raise ValueError(f"engine {spec!r} is not of the form module:Class "
                         "(e.g. my_engine:MyEngine)")
    module = importlib.import_module(module_name)
    try:
        engine_class = getattr(module, class_name)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no class {class_name!r}") from None
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise TypeError(f"{spec} is not a subclass of wengert.bench.Engine")
    return engine_class
