"""Neural networks the micrograd way: ``Module``, ``Neuron``, ``Layer``, ``MLP``.

The shape is micrograd's ``nn.py`` (``MLP(2, [16, 16, 1])``, ``parameters()``,
``zero_grad()``, a forward pass written as plain Python sums), on wengert's
tape.  Parameters are input variables, updated in place through ``.value``
(``p.value -= lr * p.grad``, or an optimiser from ``wengert.optim``).

Memory stays flat in a micrograd-style loop without any tape handling: a
model built without ``tape=`` owns a tape, records its parameters on it and
marks it.  When a forward pass starts and a backward pass has run on that
tape since the last forward pass, the model first rewinds the tape to the
mark: the previous step's rows are dropped, the parameters kept.  So
``loss.value`` is still readable after ``opt.step()``, but every ``Var`` of a
step becomes invalid once the next step's forward pass starts (using one
raises ``RuntimeError``).  Pass ``tape=`` to manage the tape yourself
(``mark()``/``rewind()``, or a fresh tape per step); the model then never
rewinds (models combined in one loss must share a tape: build the second with
``tape=first.tape``).  ``predict`` evaluates on plain floats with numpy and
records nothing.

Differences from micrograd: a model's output is always a list (``model(x)[0]``
for one output); a Var's number is ``.value`` (micrograd: ``.data``); backward
overwrites gradients instead of accumulating them, so ``zero_grad()`` is only
there for the habit.  Plain Python over the public Tape/Var API.

>>> from wengert import nn
>>> model = nn.MLP(2, [16, 16, 1], seed=0)
>>> model
MLP(2, [16, 16, 1], activation='relu'): 337 parameters
>>> loss = (model([1.0, -2.0])[0] - 1.0) ** 2
>>> loss.backward()
>>> len(model.parameters()), model.parameters()[0].grad != 0.0
(337, True)
"""

import json
import numbers

import numpy as np

from wengert._tape import Tape, Var

__all__ = ["ACTIVATIONS", "MLP", "Layer", "Module", "Neuron", "load"]

#: Activation name -> (Var method, numpy function for ``predict``).
ACTIVATIONS = {
    "relu": (Var.relu, lambda z: np.maximum(z, 0.0)),
    "tanh": (Var.tanh, np.tanh),
    "linear": (None, lambda z: z),
}

FILE_FORMAT = 1


class Module:
    """Base class: a set of parameters on one tape, called like a function.

    Subclasses create their parameters with ``self._parameter_values(...)``
    in ``__init__`` after calling ``Module.__init__``, and list them in
    ``parameters()``.
    """

    def __init__(self, tape=None, seed=None):
        if tape is not None and not isinstance(tape, Tape):
            raise TypeError(f"tape must be a wengert.Tape or None, got {type(tape).__name__}")
        self._owns_tape = tape is None
        self._tape = Tape() if tape is None else tape
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._mark = None
        self._backward_passes_seen = None

    # -- parameters ---------------------------------------------------------------

    def parameters(self):
        """All parameters: input variables, in a fixed order (micrograd's order)."""
        return []

    def zero_grad(self):
        """Do nothing: wengert's backward overwrites gradients, it never accumulates.

        Kept so that micrograd's loop (``zero_grad(); backward(); update``)
        runs unchanged.
        """

    @property
    def tape(self):
        """The tape the parameters live on (owned by the model unless ``tape=`` was given)."""
        return self._tape

    def _finish_parameters(self):
        """Mark the tape after the parameters, if this module owns it."""
        if self._owns_tape:
            self._mark = self._tape.mark()
            self._backward_passes_seen = self._tape.backward_passes

    def _begin_forward(self):
        """Drop the previous step's rows if a backward pass ran since the last forward pass."""
        if self._mark is not None:
            passes = self._tape.backward_passes
            if passes != self._backward_passes_seen:
                self._backward_passes_seen = passes
                self._tape.rewind(self._mark)

    # -- parameter arrays and files -----------------------------------------------------

    def state_dict(self):
        """The parameter values as named float64 arrays (copies).

        >>> from wengert import nn
        >>> {name: array.shape for name, array in nn.Layer(3, 2).state_dict().items()}
        {'weight': (2, 3), 'bias': (2,)}
        """
        return {name: np.array([[p.value for p in row] for row in rows]).reshape(shape)
                for name, (rows, shape) in self._named_parameters().items()}

    def load_state_dict(self, arrays):
        """Set the parameter values in place from arrays shaped like ``state_dict()``.

        Raises:
            KeyError: an array is missing.
            ValueError: an array has the wrong shape or non-finite values.
        """
        for name, (rows, shape) in self._named_parameters().items():
            if name not in arrays:
                raise KeyError(f"no array named {name!r} to load; expected "
                               f"{sorted(self._named_parameters())}")
            array = np.asarray(arrays[name], dtype=np.float64)
            if array.shape != shape:
                raise ValueError(f"array {name!r} has shape {array.shape}; this "
                                 f"{type(self).__name__} needs {shape}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"array {name!r} has non-finite values")
            for row, values in zip(rows, array.reshape(len(rows), -1)):
                for parameter, value in zip(row, values.tolist()):
                    parameter.value = value

    def save(self, path):
        """Write the model (its configuration and parameter arrays) to a numpy ``.npz`` file.

        ``wengert.nn.load(path)`` builds the same model again; the file holds
        no pickles.
        """
        config = json.dumps({"format": FILE_FORMAT, "class": type(self).__name__,
                             **self._config()})
        np.savez(path, __config__=np.array(config), **self.state_dict())

    # -- evaluation ------------------------------------------------------------------------

    def predict(self, inputs):
        """Evaluate on plain floats with numpy, recording nothing on the tape.

        Args:
            inputs: One input (shape ``(nin,)``) or a batch (shape ``(k, nin)``).

        Returns:
            A float64 array: ``(nout,)`` for one input, ``(k, nout)`` for a
            batch (a ``Neuron`` drops the ``nout`` axis).

        >>> import numpy as np
        >>> from wengert import nn
        >>> model = nn.MLP(2, [4, 1], seed=0)
        >>> bool(np.isclose(model.predict([1.0, 2.0])[0], model([1.0, 2.0])[0].value))
        True
        """
        array = np.asarray(inputs, dtype=np.float64)
        nin = self._config()["nin"]
        if array.ndim not in (1, 2) or array.shape[-1] != nin:
            raise ValueError(f"predict expects an array of shape ({nin},) or (k, {nin}), "
                             f"got shape {array.shape}")
        batch = array.reshape(-1, nin)
        out = self._predict(batch)
        return out if array.ndim == 2 else out[0]

    def __call__(self, x):
        self._begin_forward()
        return self._forward(x)


def _check_size(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _activation_name(nonlin, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{', '.join(map(repr, ACTIVATIONS))}")
    return activation if nonlin else "linear"


class Neuron(Module):
    """One neuron: ``activation(w . x + b)``, weights uniform in [-1, 1], bias 0.

    Args:
        nin: Number of inputs.
        nonlin: micrograd's switch: ``False`` makes the neuron linear.
        activation: ``"relu"`` (micrograd's), ``"tanh"`` or ``"linear"``.
        tape: A tape to record on (you then manage it); by default the neuron owns one.
        seed: Seed or ``numpy.random.Generator`` for the initial weights.

    >>> from wengert import nn
    >>> neuron = nn.Neuron(3, activation="tanh", seed=1)
    >>> neuron
    Neuron(3, activation='tanh')
    >>> type(neuron([1.0, 2.0, 3.0])).__name__
    'Var'
    """

    def __init__(self, nin, nonlin=True, *, activation="relu", tape=None, seed=None):
        super().__init__(tape, seed)
        self.nin = _check_size(nin, "nin")
        self.activation = _activation_name(nonlin, activation)
        self._activate = ACTIVATIONS[self.activation][0]
        self.w = self._tape.variables(self._rng.uniform(-1.0, 1.0, self.nin))
        self.b = self._tape.var(0.0)
        self._finish_parameters()

    def _forward(self, x):
        # the forward pass is micrograd's; a Var weight first keeps float inputs constants
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return self._activate(act) if self._activate is not None else act

    def parameters(self):
        return self.w + [self.b]

    def _named_parameters(self):
        return {"weight": ([self.w], (self.nin,)), "bias": ([[self.b]], ())}

    def _config(self):
        return {"nin": self.nin, "activation": self.activation}

    def _predict(self, batch):
        w = np.array([p.value for p in self.w])
        return ACTIVATIONS[self.activation][1](batch @ w + self.b.value)

    def __repr__(self):
        return f"Neuron({self.nin}, activation={self.activation!r})"


class Layer(Module):
    """A layer of ``nout`` neurons reading the same ``nin`` inputs; returns a list.

    Args:
        nin: Number of inputs.
        nout: Number of neurons (outputs).
        nonlin: micrograd's switch: ``False`` makes the layer linear.
        activation: ``"relu"``, ``"tanh"`` or ``"linear"``.
        tape: A tape to record on (you then manage it); by default the layer owns one.
        seed: Seed or ``numpy.random.Generator`` for the initial weights.

    >>> from wengert import nn
    >>> nn.Layer(2, 3, activation="tanh")
    Layer(2, 3, activation='tanh')
    """

    def __init__(self, nin, nout, nonlin=True, *, activation="relu", tape=None, seed=None):
        super().__init__(tape, seed)
        self.nin = _check_size(nin, "nin")
        self.nout = _check_size(nout, "nout")
        self.activation = _activation_name(nonlin, activation)
        self.neurons = [Neuron(self.nin, activation=self.activation, tape=self._tape,
                               seed=self._rng) for _ in range(self.nout)]
        self._finish_parameters()

    def _forward(self, x):
        return [neuron._forward(x) for neuron in self.neurons]

    def parameters(self):
        return [p for neuron in self.neurons for p in neuron.parameters()]

    def _named_parameters(self):
        return {"weight": ([n.w for n in self.neurons], (self.nout, self.nin)),
                "bias": ([[n.b for n in self.neurons]], (self.nout,))}

    def _config(self):
        return {"nin": self.nin, "nout": self.nout, "activation": self.activation}

    def _predict(self, batch):
        weight = np.array([[p.value for p in n.w] for n in self.neurons])
        bias = np.array([n.b.value for n in self.neurons])
        return ACTIVATIONS[self.activation][1](batch @ weight.T + bias)

    def __repr__(self):
        return f"Layer({self.nin}, {self.nout}, activation={self.activation!r})"


class MLP(Module):
    """A multilayer perceptron: micrograd's ``MLP(nin, nouts)``; the last layer is linear.

    Args:
        nin: Number of inputs.
        nouts: Sizes of the layers, e.g. ``[16, 16, 1]``.
        activation: Activation of the hidden layers: ``"relu"`` (micrograd's),
            ``"tanh"`` or ``"linear"``.
        tape: A tape to record on (you then manage it with ``mark()``/``rewind()``);
            by default the model owns one and drops each step's rows itself.
        seed: Seed or ``numpy.random.Generator`` for the initial weights.

    Calling the model on ``nin`` numbers returns a list of ``nouts[-1]`` Vars.

    >>> from wengert import nn
    >>> model = nn.MLP(3, [4, 4, 1], activation="tanh", seed=0)
    >>> model.layers[0], model.layers[-1]
    (Layer(3, 4, activation='tanh'), Layer(4, 1, activation='linear'))
    >>> output = model([1.0, 2.0, 3.0])[0].value
    >>> bool(round(output, 6) == round(float(model.predict([1.0, 2.0, 3.0])[0]), 6))
    True
    """

    def __init__(self, nin, nouts, *, activation="relu", tape=None, seed=None):
        super().__init__(tape, seed)
        self.nin = _check_size(nin, "nin")
        if isinstance(nouts, numbers.Integral):
            raise TypeError(f"nouts must be a list of layer sizes such as [16, 16, 1], "
                            f"got the number {nouts!r}; write [{nouts}]")
        self.nouts = [_check_size(n, "each layer size in nouts") for n in nouts]
        if not self.nouts:
            raise ValueError("nouts must name at least one layer, e.g. [16, 16, 1]")
        self.activation = _activation_name(True, activation)
        sizes = [self.nin] + self.nouts
        last = len(self.nouts) - 1
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i != last, activation=self.activation,
                             tape=self._tape, seed=self._rng) for i in range(len(self.nouts))]
        self._finish_parameters()

    def _forward(self, x):
        for layer in self.layers:
            x = layer._forward(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def _named_parameters(self):
        return {f"layers.{i}.{name}": entry for i, layer in enumerate(self.layers)
                for name, entry in layer._named_parameters().items()}

    def _config(self):
        return {"nin": self.nin, "nouts": self.nouts, "activation": self.activation}

    def _predict(self, batch):
        for layer in self.layers:
            batch = layer._predict(batch)
        return batch

    def __repr__(self):
        return (f"MLP({self.nin}, {self.nouts}, activation={self.activation!r}): "
                f"{len(self.parameters())} parameters")


_CLASSES = {"Neuron": Neuron, "Layer": Layer, "MLP": MLP}


def load(path):
    """Build a model saved by ``Module.save`` (read without pickles).

    >>> import os, tempfile
    >>> from wengert import nn
    >>> model = nn.MLP(2, [3, 1], seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> model.save(path)
    >>> copy = nn.load(path)
    >>> copy, bool((copy.predict([[1.0, 2.0]]) == model.predict([[1.0, 2.0]])).all())
    (MLP(2, [3, 1], activation='relu'): 13 parameters, True)

    Raises:
        ValueError: the file is not a model saved by wengert.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        config = json.loads(str(arrays.pop("__config__")))
        cls = _CLASSES[config.pop("class")]
        if config.pop("format") != FILE_FORMAT:
            raise ValueError("unknown file format version")
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a wengert model saved by Module.save(): "
                         f"{error!r}") from None
    if cls is MLP:
        model = MLP(config["nin"], config["nouts"], activation=config["activation"])
    elif cls is Layer:
        model = Layer(config["nin"], config["nout"], activation=config["activation"])
    else:
        model = Neuron(config["nin"], activation=config["activation"])
    model.load_state_dict(arrays)
    return model
