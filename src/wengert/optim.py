"""Optimisers that update input variables in place: ``SGD`` and ``Adam``.

Each takes a list of parameters (input variables, e.g. ``model.parameters()``),
reads their ``.grad`` after a backward pass and writes their ``.value`` in
``step()``, with PyTorch's update rules.  ``zero_grad()`` does nothing because
wengert's backward overwrites gradients (it is there for the habit).  Plain
Python and numpy over the public Var API.

>>> import wengert as wg
>>> from wengert import optim
>>> tape = wg.Tape()
>>> w = tape.var(3.0)
>>> opt = optim.SGD([w], lr=0.25)
>>> for _ in range(3):
...     loss = w * w
...     opt.zero_grad(); loss.backward(); opt.step()
>>> w.value                          # 3 * (1 - 2 * 0.25) ** 3
0.375
"""

import math
import numbers

import numpy as np

from wengert._tape import Var

__all__ = ["SGD", "Adam", "Optimizer"]


def _check_rate(value, name, *, upper=None, allow_zero=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero) \
            or (upper is not None and value >= upper):
        bound = f" and below {upper}" if upper is not None else ""
        sign = "positive" if not allow_zero else "non-negative"
        raise ValueError(f"{name} must be a finite {sign} number{bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: holds the parameters and their gradients as arrays.

    Args:
        parameters: Input variables (``model.parameters()`` or a list of ``Var``).
        lr: Learning rate; may be changed between steps (``opt.lr = ...``).
    """

    def __init__(self, parameters, lr):
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError("the optimiser got no parameters; pass model.parameters() "
                             "or a non-empty list of input variables")
        for k, parameter in enumerate(self.parameters):
            if not isinstance(parameter, Var):
                raise TypeError(f"parameter {k} is a {type(parameter).__name__}, not a "
                                "wengert Var; create parameters with tape.var() or "
                                "tape.variables()")
            try:
                parameter.value = parameter.value      # only input variables accept this
            except (ValueError, RuntimeError) as error:     # computed, or dropped by a rewind
                raise ValueError(f"parameter {k} cannot be optimised: {error}") from None
        self.lr = _check_rate(lr, "lr", allow_zero=False)
        self.steps = 0

    def zero_grad(self):
        """Do nothing: wengert's backward overwrites gradients, it never accumulates."""

    def gradients(self):
        """The parameters' current gradients as a float64 array."""
        return np.fromiter((p.grad for p in self.parameters), dtype=np.float64,
                           count=len(self.parameters))

    def values(self):
        """The parameters' current values as a float64 array."""
        return np.fromiter((p.value for p in self.parameters), dtype=np.float64,
                           count=len(self.parameters))

    def _write(self, values):
        for parameter, value in zip(self.parameters, values.tolist()):
            parameter.value = value

    def step(self):
        """Update every parameter from its gradient (after a backward pass)."""
        self._check_lr()
        self.steps += 1
        values = self.values()
        self._write(values - self._update(values, self.gradients()))

    def _check_lr(self):
        self.lr = _check_rate(self.lr, "lr", allow_zero=False)

    def __repr__(self):
        return f"{type(self).__name__}({len(self.parameters)} parameters, lr={self.lr!r})"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and weight decay (PyTorch's rule).

    With ``g = grad + weight_decay * p``: without momentum ``p -= lr * g``;
    with it ``b = momentum * b + g`` (``b = g`` on the first step) and
    ``p -= lr * b``.

    Args:
        parameters: Input variables to optimise.
        lr: Learning rate.
        momentum: Momentum factor in [0, 1).
        weight_decay: L2 penalty coefficient (added to the gradient).

    >>> import wengert as wg
    >>> from wengert import optim
    >>> w = wg.Tape().var(1.0)
    >>> opt = optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     (w * 1.0).backward(); opt.step()
    >>> round(w.value, 12)               # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
    0.71
    """

    def __init__(self, parameters, lr=0.01, momentum=0.0, weight_decay=0.0):
        super().__init__(parameters, lr)
        self.momentum = _check_rate(momentum, "momentum", upper=1.0)
        self.weight_decay = _check_rate(weight_decay, "weight_decay")
        self._buffer = None

    def _update(self, values, gradients):
        if self.weight_decay:
            gradients = gradients + self.weight_decay * values
        if self.momentum:
            if self._buffer is None:
                self._buffer = gradients.copy()
            else:
                self._buffer = self.momentum * self._buffer + gradients
            gradients = self._buffer
        return self.lr * gradients


class Adam(Optimizer):
    """Adam (Kingma and Ba), with bias correction, PyTorch's rule.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g**2``,
    ``p -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)``, with
    ``g = grad + weight_decay * p``.

    Args:
        parameters: Input variables to optimise.
        lr: Learning rate.
        betas: ``(b1, b2)``, decay rates of the moment estimates, each in [0, 1).
        eps: Added to the denominator for stability.
        weight_decay: L2 penalty coefficient (added to the gradient).

    >>> import wengert as wg
    >>> from wengert import optim
    >>> w = wg.Tape().var(1.0)
    >>> opt = optim.Adam([w], lr=0.1)
    >>> (w * w).backward(); opt.step()
    >>> round(w.value, 9)                # the first Adam step moves by lr
    0.9
    """

    def __init__(self, parameters, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(parameters, lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (b1, b2), got {betas!r}") from None
        self.betas = (_check_rate(beta1, "betas[0]", upper=1.0),
                      _check_rate(beta2, "betas[1]", upper=1.0))
        self.eps = _check_rate(eps, "eps")
        self.weight_decay = _check_rate(weight_decay, "weight_decay")
        self._first = np.zeros(len(self.parameters))
        self._second = np.zeros(len(self.parameters))

    def _update(self, values, gradients):
        beta1, beta2 = self.betas
        if self.weight_decay:
            gradients = gradients + self.weight_decay * values
        self._first = beta1 * self._first + (1.0 - beta1) * gradients
        self._second = beta2 * self._second + (1.0 - beta2) * gradients * gradients
        first = self._first / (1.0 - beta1 ** self.steps)
        second = self._second / (1.0 - beta2 ** self.steps)
        return self.lr * first / (np.sqrt(second) + self.eps)
