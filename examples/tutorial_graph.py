"""The computational graph of the backpropagation tutorials: g = (x + y) * z.

Records g on a tape, runs the backward pass, prints the gradients (the chain
rule by hand: dg/dz = x + y, dg/dx = dg/dy = z) and draws the graph with each
node's value and gradient: Graphviz DOT text always, an SVG picture when
Graphviz is installed.

    python examples/tutorial_graph.py --out pictures
"""

import argparse
import pathlib

import wengert as wg
from wengert.graph import draw, to_dot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for graph.dot and graph.svg")
    parser.add_argument("--no-plot", action="store_true", help="write the DOT text only")
    options = parser.parse_args(argv)

    with wg.Tape():
        x, y, z = wg.variables([1.0, 3.0, -3.0])
        q = x + y
        g = q * z
        g.backward()
    print(f"g = (x + y) * z = {g.value}")
    print(f"dg/dx = {x.grad}, dg/dy = {y.grad}, dg/dz = {z.grad}, dg/dq = {q.grad}")

    names = {"x": x, "y": y, "z": z, "q": q, "g": g}
    folder = pathlib.Path(options.out)
    folder.mkdir(parents=True, exist_ok=True)
    dot = to_dot(g, names=names)
    (folder / "graph.dot").write_text(dot)
    print(f"DOT text written to {folder / 'graph.dot'}")
    if not options.no_plot:
        try:
            print(f"picture written to {draw(g, folder / 'graph.svg', names=names)}")
        except RuntimeError as error:
            print(error)
    return {"g": g.value, "grads": (x.grad, y.grad, z.grad, q.grad), "dot": dot}


if __name__ == "__main__":
    main()
