"""wengert.graph: DOT text of the computational graph (parsed back) and drawing it."""

import builtins
import doctest
import re
import shutil
import stat
import sys

import numpy as np
import pytest

import wengert as wg
from wengert import graph
from wengert.graph import draw, to_dot

NODE = re.compile(r'^\s*(v\d+) \[label="\{(.*)\}"(.*)\];$')
EDGE = re.compile(r"^\s*(v\d+) -> (v\d+);$")


def parse(dot):
    """{node: (fields, attributes)} and the set of edges of to_dot's output."""
    assert dot.startswith("digraph wengert {") and dot.rstrip().endswith("}")
    nodes, edges = {}, set()
    for line in dot.splitlines()[1:-1]:
        if (match := NODE.match(line)):
            nodes[match[1]] = ([field.strip() for field in match[2].split(" | ")], match[3])
        elif (match := EDGE.match(line)):
            edges.add((match[1], match[2]))
    return nodes, edges


def tutorial():
    with wg.Tape():
        x, y, z = wg.variables([1.0, 3.0, -3.0])
        q = x + y
        g = q * z
    return x, y, z, q, g


def test_doctests():
    result = doctest.testmod(graph, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_tutorial_graph_with_values_and_gradients():
    x, y, z, q, g = tutorial()
    before, _ = parse(to_dot(g))
    assert all(len(fields) == 2 for fields, _ in before.values())       # no backward yet
    g.backward()
    nodes, edges = parse(to_dot(g, names={"x": x, "y": y, "z": z, "q": q, "g": g}))
    assert {name: fields for name, (fields, _) in nodes.items()} == {
        "v1": ["x (input)", "value 1", "grad -3"],
        "v2": ["y (input)", "value 3", "grad -3"],
        "v3": ["z (input)", "value -3", "grad 4"],
        "v4": ["q = x + y", "value 4", "grad -3"],
        "v5": ["g = q * z", "value -12", "grad 1"],
    }
    assert edges == {("v1", "v4"), ("v2", "v4"), ("v4", "v5"), ("v3", "v5")}
    assert all("fillcolor" in nodes[v][1] for v in ("v1", "v2", "v3"))    # inputs filled
    assert "peripheries=2" in nodes["v5"][1] and "fillcolor" not in nodes["v4"][1]


def test_only_what_y_depends_on_and_gradients_match_the_tape():
    with wg.Tape():
        a, b = wg.variables([0.5, 2.0])
        orphan = wg.cos(b)                        # recorded before y, not used by y
        shared = a * b
        y = wg.sin(shared) + shared / b - 2.0 ** a + wg.exp(a) * 0 + abs(-b)
        after = y * 3.0                           # recorded after y
    y.backward()
    nodes, edges = parse(to_dot(y, gradients=True))
    rows = {int(name[1:]) for name in nodes}
    assert max(rows) == y.index and orphan.index not in rows and after.index not in rows
    for source, target in edges:
        assert int(source[1:]) < int(target[1:])                 # topological
        assert source in nodes and target in nodes
    by_row = {int(name[1:]): fields for name, (fields, _) in nodes.items()}
    for variable in (a, b, shared):
        assert by_row[variable.index][2] == f"grad {variable.grad:.6g}"
    constants = [fields for name, (fields, attributes) in nodes.items() if "dashed" in attributes]
    assert constants and all(fields[0].endswith("= constant") for fields in constants)
    labels = " ".join(fields[0] for fields, _ in nodes.values())
    for piece in ("sin(", "abs(", " / ", " - ", " ** ", "exp(", "= -v"):
        assert piece in labels


def test_unreached_graph_and_graph_after_a_later_backward():
    with wg.Tape():
        x = wg.var(2.0)
        y = x * x
        z = y + 1.0
    z.backward(seed=2.0)
    nodes, _ = parse(to_dot(z))
    assert nodes["v2"][0][2] == "grad 2" and nodes["v1"][0][2] == "grad 8"   # seed 2


def test_tape_and_recorded_function():
    F = wg.record(lambda v: wg.sin(v[0]) * v[1] + 2.0, np.array([0.0, 3.0]))
    nodes, edges = parse(to_dot(F))
    assert len(nodes) == 6 and len(edges) == 5
    assert sum("fillcolor=\"#cfe2ff\"" in attributes for _, attributes in nodes.values()) == 2
    fields, attributes = nodes["v6"]
    # a replay keeps its leaves first: x0, x1, the constant 2, then sin, *, +
    assert fields == ["v6 = v5 + 2", "value 2"] and "peripheries=2" in attributes
    with_gradients, _ = parse(to_dot(F, gradients=True))
    assert with_gradients["v1"][0][2] == "grad 3"              # cos(0) * 3
    tape = wg.Tape()
    a = tape.var(1.5)
    b = a * a
    tape_nodes, _ = parse(to_dot(tape))
    assert tape_nodes["v2"][0] == ["v2 = v1 * v1", "value 2.25"]
    with pytest.raises(ValueError, match="empty"):
        to_dot(wg.Tape())
    assert b.value == 2.25


def test_max_nodes_limit():
    with wg.Tape():
        y = x = wg.var(0.1)
        for _ in range(600):
            y = wg.sin(y)
    with pytest.raises(ValueError, match="more than max_nodes=500 nodes.*max_nodes="):
        to_dot(y)
    nodes, _ = parse(to_dot(y, max_nodes=601))
    assert len(nodes) == 601 and x.index == 1


def test_argument_errors():
    _, _, _, _, g = tutorial()
    with pytest.raises(TypeError, match="a Var, a Tape or a recorded function"):
        to_dot(3.0)
    with pytest.raises(TypeError, match="names maps names to Vars"):
        to_dot(g, names={"x": 1.0})
    with pytest.raises(ValueError, match="max_nodes must be a positive integer"):
        to_dot(g, max_nodes=0)
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        draw(g, "graph.pdf")


def hide_graphviz_package(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "graphviz":
            raise ImportError("No module named 'graphviz'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_draw_without_graphviz_names_both(monkeypatch, tmp_path):
    hide_graphviz_package(monkeypatch)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    _, _, _, _, g = tutorial()
    with pytest.raises(RuntimeError, match="pip install graphviz.*apt-get install graphviz"):
        draw(g, tmp_path / "graph.svg")
    assert not (tmp_path / "graph.svg").exists()


def test_draw_runs_the_dot_program(monkeypatch, tmp_path):
    # a stand-in dot that copies its input: checks the plumbing without Graphviz
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write(sys.stdin.read())\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    hide_graphviz_package(monkeypatch)
    monkeypatch.setenv("PATH", str(fake.parent))
    _, _, _, _, g = tutorial()
    assert draw(g, tmp_path / "graph.png") == str(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_text() == to_dot(g)


def test_draw_with_graphviz(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    x, _, _, _, g = tutorial()
    g.backward()
    svg = (tmp_path / "g.svg")
    draw(g, svg, names={"x": x, "g": g})
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "g = v4 * v3" in text and "grad 4" in text
    draw(g, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
