"""Pictures of the computational graph: ``to_dot`` (Graphviz DOT text) and ``draw``.

Each row of the tape that the output depends on becomes one node, labelled
with its Wengert-list equation (``v5 = v3 * v4``; a name you give replaces
``v5``), its value and, after a backward pass, its gradient.  Inputs are
blue, constants grey and dashed, the output drawn with a double border;
edges run from operands to results, left to right, like the figures of the
backpropagation tutorials.  ``draw`` renders the DOT text to SVG or PNG with
Graphviz.  Plain Python over the public Tape/Var API (``Tape.to_arrays``).
"""

import os
import shutil
import subprocess

from wengert._tape import OP_ARITY, OP_NAMES, Tape, Var

__all__ = ["DEFAULT_MAX_NODES", "draw", "to_dot"]

#: ``to_dot`` refuses graphs with more nodes than this unless told otherwise.
DEFAULT_MAX_NODES = 500

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "pow_const": "**"}
_PREFIX = {"neg": "-"}

GRAPHVIZ_MISSING = ("drawing the graph needs the graphviz Python package and Graphviz's dot "
                    "program: pip install graphviz, and install Graphviz itself "
                    "(apt-get install graphviz, brew install graphviz, or "
                    "https://graphviz.org/download/); to_dot() gives the DOT text without them")


def _rows(source):
    """(arrays, output rows, backward seed or 0.0) for a Var, a Tape or a recorded function."""
    if isinstance(source, Var):
        tape = source.tape
        arrays = tape.to_arrays()
        output = source.index
        arrays = {name: column[:output + 1] for name, column in arrays.items()}
        # gradients are those of a backward pass from this output: its seed times d y / d row
        seed = source.grad if tape.backward_passes else 0.0
        return arrays, [output], seed
    if isinstance(source, Tape):
        arrays = source.to_arrays()
        if len(arrays["op"]) < 2:
            raise ValueError("the tape is empty: record something before drawing it")
        return arrays, [len(arrays["op"]) - 1], 0.0
    state = getattr(source, "__getstate__", None)
    if callable(state) and hasattr(source, "n_outputs"):      # a RecordedFunction
        outputs = [int(row) for row in state()["arrays"]["outputs"]]
        return source.tape.to_arrays(), outputs, 0.0
    raise TypeError(f"to_dot draws a Var, a Tape or a recorded function, got "
                    f"{type(source).__name__}")


def _ancestors(arrays, outputs, max_nodes):
    """Rows the outputs depend on, in increasing order; at most max_nodes."""
    op, arg0, arg1 = arrays["op"], arrays["arg0"], arrays["arg1"]
    seen = set()
    stack = list(outputs)
    while stack:
        row = stack.pop()
        if row in seen:
            continue
        seen.add(row)
        if len(seen) > max_nodes:
            raise ValueError(
                f"the graph has more than max_nodes={max_nodes} nodes (its tape has "
                f"{len(op) - 1} rows); a picture that large is unreadable: draw a smaller "
                f"function, or pass a larger max_nodes= to draw it anyway")
        arity = OP_ARITY[op[row]]
        if arity >= 1:
            stack.append(int(arg0[row]))
        if arity == 2:
            stack.append(int(arg1[row]))
    return sorted(seen)


def _adjoints(arrays, rows, output, seed):
    """d(seed * y)/d row for the drawn rows: the reverse sweep over the subgraph."""
    adjoint = dict.fromkeys(rows, 0.0)
    adjoint[output] = seed
    op, arg0, arg1, d0, d1 = (arrays[k] for k in ("op", "arg0", "arg1", "d0", "d1"))
    for row in reversed(rows):               # rows are a topological order
        g = adjoint[row]
        arity = OP_ARITY[op[row]]
        if g == 0.0 or arity == 0:
            continue
        adjoint[int(arg0[row])] += float(d0[row]) * g
        if arity == 2:
            adjoint[int(arg1[row])] += float(d1[row]) * g
    return adjoint


def _escape(text):
    """Escape text for a Graphviz record label."""
    for char in "\\{}|<>\"":
        text = text.replace(char, "\\" + char)
    return text


def _number(value):
    return f"{value:.6g}"


def to_dot(y, *, names=None, max_nodes=DEFAULT_MAX_NODES, gradients=None, rankdir="LR"):
    """Graphviz DOT text of everything ``y`` depends on.

    Args:
        y: A ``Var`` (its graph), a ``Tape`` (the graph of its last row) or a
            recorded function (``wengert.record``; the graph of its outputs,
            with the values at the recording point).
        names: A dict of names for variables, ``{"x": x, "g": g}``, used in
            the labels instead of ``v<row>``.
        max_nodes: Refuse (``ValueError``) graphs with more nodes than this.
        gradients: Show each node's gradient ``d y / d node`` (scaled by the
            seed of the backward pass).  ``None``: when a backward pass has
            reached ``y`` (a Var); for a Tape or a recorded function pass
            ``True`` to see the gradients at its recorded values.
        rankdir: Graphviz layout direction: ``"LR"`` (left to right) or ``"TB"``.

    Returns:
        The DOT source as a string: one node per row named ``v<row>``, edges
        from operands to results.

    Raises:
        ValueError: the graph has more than ``max_nodes`` nodes.
        TypeError: ``y`` is not a Var, a Tape or a recorded function.

    >>> import wengert as wg
    >>> from wengert.graph import to_dot
    >>> with wg.Tape():
    ...     x, y, z = wg.variables([1.0, 3.0, -3.0])
    ...     g = (x + y) * z
    ...     g.backward()
    >>> dot = to_dot(g, names={"x": x, "y": y, "z": z, "g": g})
    >>> print(dot.splitlines()[-2])
      v3 -> v5;
    >>> [line.strip() for line in dot.splitlines() if line.strip().startswith("v5 [")]
    ['v5 [label="{g = v4 * z | value -12 | grad 1}", penwidth=2, peripheries=2];']
    """
    if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive integer, got {max_nodes!r}")
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    arrays, outputs, seed = _rows(y)
    rows = _ancestors(arrays, outputs, max_nodes)
    show_gradients = (seed != 0.0) if gradients is None else bool(gradients)
    if show_gradients and len(outputs) != 1:
        raise ValueError("gradients can be shown for a single output only")
    adjoint = (_adjoints(arrays, rows, outputs[0], seed if seed != 0.0 else 1.0)
               if show_gradients else None)

    labels = {}
    for name, variable in (names or {}).items():
        if not isinstance(variable, Var):
            raise TypeError(f"names maps names to Vars; {name!r} maps to "
                            f"{type(variable).__name__}")
        labels[variable.index] = str(name)

    def ref(row):
        if row in labels:
            return labels[row]
        if OP_NAMES[arrays["op"][row]] == "const":
            return _number(float(arrays["value"][row]))
        return f"v{row}"

    lines = ["digraph wengert {", f"  rankdir={rankdir};",
             '  node [shape=record, fontname="Helvetica", fontsize=11];',
             '  edge [color="#555555"];']
    output_rows = set(outputs)
    for row in rows:
        op_name = OP_NAMES[arrays["op"][row]]
        arity = OP_ARITY[arrays["op"][row]]
        head = labels.get(row, f"v{row}")
        a, b = int(arrays["arg0"][row]), int(arrays["arg1"][row])
        if op_name == "input":
            equation = f"{head} (input)" if row in labels else f"{head} = input"
        elif op_name == "const":
            equation = f"{head} = constant"
        elif op_name in _INFIX:
            equation = f"{head} = {ref(a)} {_INFIX[op_name]} {ref(b)}"
        elif op_name in _PREFIX:
            equation = f"{head} = {_PREFIX[op_name]}{ref(a)}"
        elif arity == 2:
            equation = f"{head} = {op_name}({ref(a)}, {ref(b)})"
        else:
            equation = f"{head} = {op_name}({ref(a)})"
        fields = [equation, f"value {_number(float(arrays['value'][row]))}"]
        if adjoint is not None:
            fields.append(f"grad {_number(adjoint[row])}")
        attributes = ['label="{' + " | ".join(_escape(field) for field in fields) + '}"']
        if op_name == "input":
            attributes.append('style=filled, fillcolor="#cfe2ff"')
        elif op_name == "const":
            attributes.append('style="filled,dashed", fillcolor="#eeeeee"')
        if row in output_rows:
            attributes.append("penwidth=2, peripheries=2")
        lines.append(f"  v{row} [{', '.join(attributes)}];")
    for row in rows:
        arity = OP_ARITY[arrays["op"][row]]
        operands = [int(arrays["arg0"][row]), int(arrays["arg1"][row])][:arity]
        for operand in operands:
            lines.append(f"  v{operand} -> v{row};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw(y, path, *, names=None, max_nodes=DEFAULT_MAX_NODES, gradients=None, rankdir="LR"):
    """Render the graph of ``y`` (see ``to_dot``) to an SVG or PNG file with Graphviz.

    Uses the ``graphviz`` Python package, or Graphviz's ``dot`` program
    directly when only that is installed.

    Args:
        y: A Var, a Tape or a recorded function, as for ``to_dot``.
        path: The file to write; its suffix, ``.svg`` or ``.png``, is the format.
        names, max_nodes, gradients, rankdir: As for ``to_dot``.

    Returns:
        ``path``, as a string.

    Raises:
        RuntimeError: neither the graphviz package with ``dot`` nor ``dot`` is
            installed (the message says what to install).
        ValueError: the suffix is not ``.svg`` or ``.png``, or the graph is too large.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".svg", ".png"):
        raise ValueError(f"draw writes .svg or .png files, got {path!r}; use to_dot() for "
                         "the DOT text")
    source = to_dot(y, names=names, max_nodes=max_nodes, gradients=gradients, rankdir=rankdir)
    image = _render(source, suffix[1:])
    with open(path, "wb") as file:
        file.write(image)
    return path


def _render(source, image_format):
    """DOT text -> image bytes, through the graphviz package or the dot program."""
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        try:
            return graphviz.Source(source).pipe(format=image_format)
        except graphviz.ExecutableNotFound:
            raise RuntimeError(GRAPHVIZ_MISSING) from None
    executable = shutil.which("dot")
    if executable is None:
        raise RuntimeError(GRAPHVIZ_MISSING)
    completed = subprocess.run([executable, f"-T{image_format}"], input=source.encode(),
                               capture_output=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed: {completed.stderr.decode(errors='replace')}")
    return completed.stdout

