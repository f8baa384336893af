"""JAX-style function transforms: ``grad``, ``value_and_grad``, ``jacobian``,
``jvp``, ``hvp`` and ``hessian``.

Each transform takes ``fun`` and returns a new function.  Every call records
on a private tape, so calls are independent, re-entrant and thread-safe.
Plain Python over the public Tape/Var API; the forward-mode and second-order
transforms record ``fun`` at the point and run the sweeps of ``wengert.record``.
"""

import numbers

import numpy as np

from wengert._tape import Tape, Var
from wengert.recorded import _is_scalar, _output_items, record

__all__ = ["grad", "value_and_grad", "jacobian", "jvp", "hvp", "hessian"]


def value_and_grad(fun, argnums=0, has_aux=False):
    """Return a function computing both ``fun`` and its gradient.

    Args:
        fun: A function returning a scalar (a Var or a plain number).
        argnums: Index, or tuple of indices, of the positional arguments to
            differentiate.  Each may be a real number (its gradient is a
            float) or an array-like of real numbers (its gradient is a float64
            ndarray of the same shape).  Inside ``fun`` a number arrives as a
            ``Var`` and an array as a (nested) list of ``Var``.
        has_aux: ``fun`` returns ``(output, aux)``; ``aux`` is passed back
            with every ``Var`` in it replaced by its float value.

    Returns:
        A function with ``fun``'s signature returning ``(value, gradient)``,
        or ``((value, aux), gradient)`` with ``has_aux``.  With a tuple
        ``argnums``, ``gradient`` is a tuple.

    Raises:
        TypeError: ``fun``'s output is not a scalar (use ``jacobian``), or a
            differentiated argument is not numeric.
        ValueError: ``argnums`` names an argument that was not passed.

    >>> import numpy as np
    >>> import wengert as wg
    >>> df = wg.value_and_grad(lambda v: wg.sin(v[0]) * v[1] + v[1] ** 2)
    >>> value, gradient = df(np.array([0.5, 2.0]))
    >>> round(value, 6), gradient.round(6)
    (4.958851, array([1.755165, 4.479426]))
    """
    _check_callable(fun, "value_and_grad")
    positions = _normalise_argnums(argnums)

    def value_and_grad_fun(*args, **kwargs):
        with Tape() as tape:
            arguments, inputs = _differentiable_arguments(tape, args, positions, "value_and_grad")
            output = fun(*arguments, **kwargs)
            if has_aux:
                output, aux = _split_aux(output)
            value = _scalar_output(output, "value_and_grad")
            gradients = _gradients(tape, output, inputs)
        result = (value, _strip(aux)) if has_aux else value
        return result, _for_argnums(gradients, argnums)

    value_and_grad_fun.__wrapped__ = fun
    value_and_grad_fun.__doc__ = f"Value and gradient of {_name(fun)} (wengert.value_and_grad)."
    return value_and_grad_fun


def grad(fun, argnums=0, has_aux=False):
    """Return a function computing the gradient of scalar-valued ``fun``.

    Arguments, conventions and errors as in ``value_and_grad``; the result is
    the gradient alone, or ``(gradient, aux)`` with ``has_aux``.

    >>> import wengert as wg
    >>> wg.grad(lambda x: x ** 3)(2.0)
    12.0
    >>> wg.grad(lambda x, y: x * y, argnums=(0, 1))(3.0, 4.0)
    (4.0, 3.0)
    """
    _check_callable(fun, "grad")
    differentiated = value_and_grad(fun, argnums, has_aux)

    def grad_fun(*args, **kwargs):
        value, gradient = differentiated(*args, **kwargs)
        if has_aux:
            return gradient, value[1]
        return gradient

    grad_fun.__wrapped__ = fun
    grad_fun.__doc__ = f"Gradient of {_name(fun)} (wengert.grad)."
    return grad_fun


def jacobian(fun, argnums=0):
    """Return a function computing the Jacobian of ``fun``.

    Args:
        fun: A function returning a sequence of scalars (or one scalar).
        argnums: As in ``value_and_grad``.

    Returns:
        A function returning a float64 array of shape
        ``(len(output),) + shape(argument)`` (a tuple of them for a tuple
        ``argnums``); for a scalar output, the gradient's shape.

    >>> import wengert as wg
    >>> J = wg.jacobian(lambda v: [v[0] * v[1], v[0] + 2 * v[1]])
    >>> J([3.0, 5.0])
    array([[5., 3.],
           [1., 2.]])
    """
    _check_callable(fun, "jacobian")
    positions = _normalise_argnums(argnums)

    def jacobian_fun(*args, **kwargs):
        with Tape() as tape:
            arguments, inputs = _differentiable_arguments(tape, args, positions, "jacobian")
            output = fun(*arguments, **kwargs)
            if _is_scalar(output):
                gradients = _gradients(tape, output, inputs)
            else:
                rows = [_gradients(tape, item, inputs) for item in _output_items(output)]
                gradients = [_stack(per_output, shape)
                             for per_output, (_, shape) in zip(zip(*rows), inputs)]
        return _for_argnums(gradients, argnums)

    jacobian_fun.__wrapped__ = fun
    jacobian_fun.__doc__ = f"Jacobian of {_name(fun)} (wengert.jacobian)."
    return jacobian_fun


def jvp(fun, argnums=0):
    """Return a function computing ``fun`` and its directional derivative.

    The returned function takes ``fun``'s positional arguments followed by the
    direction ``v`` (shaped like the differentiated argument) and returns
    ``(value, tangent)``: ``<grad fun(x), v>`` for a scalar output, ``J v``
    for a sequence of outputs.  One forward (tangent) sweep.

    >>> import wengert as wg
    >>> wg.jvp(lambda v: v[0] * v[1])([2.0, 3.0], [1.0, 0.0])
    (6.0, 3.0)
    """
    _check_callable(fun, "jvp")

    def jvp_fun(*args_and_direction, **kwargs):
        *args, direction = args_and_direction
        recorded, x = _record_argument(fun, args, kwargs, argnums, "jvp")
        return recorded.jvp(x, _like(direction, x))

    jvp_fun.__wrapped__ = fun
    return jvp_fun


def hvp(fun, argnums=0):
    """Return a function computing the Hessian of scalar-valued ``fun`` times a vector.

    The returned function takes ``fun``'s positional arguments followed by the
    direction ``v`` and returns ``H v`` shaped like the differentiated argument
    (forward-over-reverse on one tape).

    >>> import wengert as wg
    >>> wg.hvp(lambda v: v[0] ** 2 * v[1])([1.0, 2.0], [1.0, 0.0]).tolist()
    [4.0, 2.0]
    """
    _check_callable(fun, "hvp")

    def hvp_fun(*args_and_direction, **kwargs):
        *args, direction = args_and_direction
        recorded, x = _record_argument(fun, args, kwargs, argnums, "hvp")
        return recorded.hvp(x, _like(direction, x))

    hvp_fun.__wrapped__ = fun
    return hvp_fun


def hessian(fun, argnums=0):
    """Return a function computing the Hessian of scalar-valued ``fun``: (n, n), symmetric.

    >>> import wengert as wg
    >>> wg.hessian(lambda v: v[0] ** 3 + v[0] * v[1])([1.0, 2.0]).tolist()
    [[6.0, 1.0], [1.0, 0.0]]
    """
    _check_callable(fun, "hessian")

    def hessian_fun(*args, **kwargs):
        recorded, x = _record_argument(fun, args, kwargs, argnums, "hessian")
        recorded._plan_hessians = False        # one Hessian: the plan would not pay off
        return recorded.hessian(x)

    hessian_fun.__wrapped__ = fun
    return hessian_fun


def _record_argument(fun, args, kwargs, argnums, transform):
    """Record ``fun`` as a function of its argument ``argnums`` alone, at its value."""
    if isinstance(argnums, tuple):
        raise TypeError(f"{transform} differentiates one argument: pass an int argnums "
                        "(combine several into one array)")
    (position,) = _normalise_argnums(argnums)
    if not -len(args) <= position < len(args):
        raise ValueError(f"{transform}: argnums {position} is out of range for a call with "
                         f"{len(args)} positional argument(s)")
    argument = args[position]
    if isinstance(argument, Var):
        raise TypeError(f"{transform}: argument {position} is already a wengert Var; nested "
                        "differentiation is not supported by eager transforms")
    if isinstance(argument, numbers.Real) and not isinstance(argument, bool):
        x = float(argument)
    else:
        x = _numeric_array(argument, position, transform).astype(np.float64)
        if x.ndim != 1:
            raise ValueError(f"{transform}: argument {position} must be a number or a 1-D "
                             f"array, got shape {x.shape}")
    arguments = list(args)

    def of_argument(value):
        arguments[position] = value
        return fun(*arguments, **kwargs)

    return record(of_argument, x), x


def _like(direction, x):
    if isinstance(x, float):
        return direction
    return np.asarray(direction, dtype=np.float64)


# -- helpers -------------------------------------------------------------------

def _check_callable(fun, transform):
    if not callable(fun):
        raise TypeError(f"{transform}() expects a callable, got {type(fun).__name__}")


def _name(fun):
    return getattr(fun, "__qualname__", repr(fun))


def _normalise_argnums(argnums):
    positions = argnums if isinstance(argnums, tuple) else (argnums,)
    if not positions:
        raise ValueError("argnums must name at least one argument")
    for position in positions:
        if isinstance(position, bool) or not isinstance(position, numbers.Integral):
            raise TypeError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
    if len(set(positions)) != len(positions):
        raise ValueError(f"argnums must not repeat an argument, got {argnums!r}")
    return tuple(int(position) for position in positions)


def _differentiable_arguments(tape, args, positions, transform):
    """Replace each differentiated argument by Vars; return the arguments and
    a list of (Vars in flat order, shape or None for a scalar) per position."""
    arguments = list(args)
    inputs = []
    for position in positions:
        if not -len(args) <= position < len(args):
            raise ValueError(
                f"{transform}: argnums {position} is out of range for a call with "
                f"{len(args)} positional argument(s)")
        argument = args[position]
        if isinstance(argument, Var):
            raise TypeError(
                f"{transform}: argument {position} is already a wengert Var; nested "
                "differentiation (grad of grad) is not supported by eager transforms")
        if isinstance(argument, numbers.Real) and not isinstance(argument, bool):
            variable = tape.var(argument)
            arguments[position] = variable
            inputs.append(([variable], None))
            continue
        array = _numeric_array(argument, position, transform)
        flat = tape.variables(array.ravel())
        arguments[position] = _nest(flat, array.shape)
        inputs.append((flat, array.shape))
    return arguments, inputs


def _numeric_array(argument, position, transform):
    try:
        array = np.asarray(argument)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{transform}: argument {position} is not numeric: {error}") from None
    if array.dtype.kind not in "iuf" or array.ndim == 0:
        raise TypeError(
            f"{transform}: argument {position} must be a real number or an array of real "
            f"numbers to be differentiated, got {type(argument).__name__}"
            + (f" of dtype {array.dtype}" if array.ndim else ""))
    return array


def _nest(flat, shape):
    """A list (of lists) of Vars with the given shape, from a flat list."""
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[k * step:(k + 1) * step], shape[1:]) for k in range(shape[0])]


def _scalar_output(output, transform):
    if not _is_scalar(output):
        description = type(output).__name__
        if hasattr(output, "__len__"):
            description += f" of length {len(output)}"
        raise TypeError(
            f"Gradient only defined for scalar-output functions. Output was a {description}; "
            "use wg.jacobian for functions returning several values")
    if isinstance(output, np.ndarray):
        output = output[()]
    return output.value if isinstance(output, Var) else float(output)


def _gradients(tape, output, inputs):
    """Gradient of one scalar output w.r.t. each differentiated argument."""
    if isinstance(output, np.ndarray):
        output = output[()]
    if isinstance(output, Var) and output.tape is tape:
        flat = tape.gradient(output, [v for variables, _ in inputs for v in variables])
    else:
        # A constant, or a Var from another tape (a closure): it does not depend on the inputs.
        if not isinstance(output, (Var, numbers.Real)):
            raise TypeError(f"expected a scalar output, got {type(output).__name__}")
        flat = np.zeros(sum(len(variables) for variables, _ in inputs))
    gradients, start = [], 0
    for variables, shape in inputs:
        part = flat[start:start + len(variables)]
        start += len(variables)
        gradients.append(float(part[0]) if shape is None else part.reshape(shape))
    return gradients


def _stack(per_output, shape):
    return np.array(per_output, dtype=np.float64).reshape((len(per_output),) + (shape or ()))


def _for_argnums(gradients, argnums):
    return tuple(gradients) if isinstance(argnums, tuple) else gradients[0]


def _split_aux(output):
    if not (isinstance(output, (tuple, list)) and len(output) == 2):
        raise TypeError("has_aux=True requires fun to return a pair (output, aux)")
    return output[0], output[1]


def _strip(aux):
    """aux with every Var replaced by its value (so nothing keeps the tape alive)."""
    if isinstance(aux, Var):
        return aux.value
    if isinstance(aux, (list, tuple)):
        return type(aux)(_strip(item) for item in aux)
    if isinstance(aux, dict):
        return {key: _strip(item) for key, item in aux.items()}
    return aux
