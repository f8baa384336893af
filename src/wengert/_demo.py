"""``python -m wengert demo``: micrograd's two-moons demo and the tutorial graph, end to end.

Trains a 2-16-16-1 ReLU MLP on 100 two-moons points with micrograd's loop
(max-margin loss, L2 penalty, SGD from 1.0 to 0.1) until 100% training
accuracy, times a few of the same steps on micrograd when it is installed,
and writes to a folder: ``two_moons.png`` (the decision boundary, with
matplotlib), ``graph.svg`` (g = (x + y) * z with values and gradients, with
Graphviz) and ``graph.dot`` (always).  A missing optional package skips its
picture with a message naming it.  The learner's version of the same code
is ``examples/two_moons.py``.
"""

import pathlib
import time

import numpy as np

from wengert import nn, optim
from wengert._tape import Tape, variables
from wengert.graph import draw, to_dot

__all__ = ["main"]


def make_moons(samples, noise, rng):
    """Two interleaving half circles, as sklearn.datasets.make_moons; labels -1 and +1."""
    upper, lower = samples // 2, samples - samples // 2
    angle_upper, angle_lower = np.linspace(0, np.pi, upper), np.linspace(0, np.pi, lower)
    points = np.vstack([np.c_[np.cos(angle_upper), np.sin(angle_upper)],
                        np.c_[1 - np.cos(angle_lower), 0.5 - np.sin(angle_lower)]])
    labels = np.r_[-np.ones(upper), np.ones(lower)]
    return points + rng.normal(scale=noise, size=points.shape), labels


def _loss(model, points, labels):
    scores = [model(x)[0] for x in points]
    data_loss = sum((1 + -y * s).relu() for y, s in zip(labels, scores)) * (1.0 / len(scores))
    accuracy = sum((y > 0) == (s.value > 0) for y, s in zip(labels, scores)) / len(labels)
    return data_loss + 1e-4 * sum(p * p for p in model.parameters()), accuracy


def progress(count, quiet):
    """tqdm's progress bar over range(count) when installed, else the plain range."""
    if not quiet:
        try:
            from tqdm import trange
            return trange(count, desc="two moons", unit="step")
        except ImportError:
            pass
    return range(count)


def _micrograd_seconds_per_step(weights, points, labels, steps):
    from micrograd.engine import Value
    from micrograd.nn import MLP

    model = MLP(2, [16, 16, 1])
    for parameter, value in zip(model.parameters(), weights):
        parameter.data = value
    start = time.perf_counter()
    for _ in range(steps):
        scores = [model(list(map(Value, x))) for x in points]
        loss = sum((1 + -y * s).relu() for y, s in zip(labels, scores)) * (1.0 / len(scores))
        loss = loss + 1e-4 * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        for parameter in model.parameters():
            parameter.data -= 1.0 * parameter.grad
    return (time.perf_counter() - start) / steps


def plot_decision_boundary(model, points, labels, path):
    """Colour the plane by the model's sign (``predict``: numpy, nothing recorded)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = np.meshgrid(np.linspace(-1.6, 2.6, 150), np.linspace(-1.1, 1.6, 100))
    scores = model.predict(np.c_[xs.ravel(), ys.ravel()])[:, 0].reshape(xs.shape)
    figure, axes = plt.subplots(figsize=(4.5, 3.2), dpi=80)
    axes.contourf(xs, ys, scores > 0, cmap=plt.cm.Spectral, alpha=0.8)
    axes.scatter(points[:, 0], points[:, 1], c=labels, s=18, cmap=plt.cm.Spectral,
                 edgecolors="k", linewidths=0.5)
    axes.set_title("wengert: 2-16-16-1 MLP on two moons", fontsize=10)
    axes.set_xticks([]), axes.set_yticks([])
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main(folder="wengert-demo", *, samples=100, steps=100, micrograd_steps=2, quiet=False):
    """Run the demo and write its pictures to ``folder`` (created if needed).

    Args:
        folder: Where to write ``two_moons.png``, ``graph.svg`` and ``graph.dot``.
        samples: Number of two-moons points.
        steps: Training steps.
        micrograd_steps: Steps to time on micrograd when installed (0 skips).
        quiet: No progress bar or step lines.

    Returns:
        A dict: ``accuracy``, ``loss``, ``seconds``, ``tape_rows``,
        ``micrograd_seconds_per_step`` (or None) and ``files`` (the paths written).
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"wengert demo: writing to {folder.resolve()}")
    rng = np.random.default_rng(1337)
    points, labels = make_moons(samples, 0.1, rng)
    point_list, label_list = points.tolist(), labels.tolist()
    model = nn.MLP(2, [16, 16, 1], seed=1337)
    weights = [p.value for p in model.parameters()]
    print(model)

    optimizer = optim.SGD(model.parameters(), lr=1.0)
    bar = progress(steps, quiet)
    start = time.perf_counter()
    for step in bar:
        loss, accuracy = _loss(model, point_list, label_list)
        optimizer.zero_grad()
        loss.backward()
        optimizer.lr = 1.0 - 0.9 * step / steps
        optimizer.step()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss.value:.4f}", accuracy=f"{accuracy:.0%}")
        elif not quiet and (step % 10 == 0 or step == steps - 1):
            print(f"step {step:3d}  loss {loss.value:.6f}  accuracy {accuracy:.0%}")
    seconds = time.perf_counter() - start
    print(f"wengert: {steps} steps in {seconds:.2f} s, training accuracy {accuracy:.0%}, "
          f"tape {len(model.tape)} rows")

    micrograd_per_step = None
    if micrograd_steps > 0:
        try:
            micrograd_per_step = _micrograd_seconds_per_step(weights, point_list, label_list,
                                                             micrograd_steps)
        except ImportError:
            print("micrograd is not installed (pip install micrograd): no timing comparison")
        else:
            print(f"micrograd: {micrograd_per_step * 1e3:.0f} ms per step against wengert's "
                  f"{seconds / steps * 1e3:.1f} ms: wengert is "
                  f"{micrograd_per_step / (seconds / steps):.0f} times faster")

    files = []
    try:
        plot_decision_boundary(model, points, labels, folder / "two_moons.png")
        files.append(folder / "two_moons.png")
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no decision-boundary plot")

    with Tape():
        x, y, z = variables([1.0, 3.0, -3.0])
        q = x + y
        g = q * z
        g.backward()
    names = {"x": x, "y": y, "z": z, "q": q, "g": g}
    (folder / "graph.dot").write_text(to_dot(g, names=names))
    files.append(folder / "graph.dot")
    try:
        files.append(pathlib.Path(draw(g, folder / "graph.svg", names=names)))
    except RuntimeError as error:
        print(error)
    for path in files:
        print(f"wrote {path}")
    return {"accuracy": accuracy, "loss": loss.value, "seconds": seconds,
            "tape_rows": len(model.tape), "micrograd_seconds_per_step": micrograd_per_step,
            "files": files}
