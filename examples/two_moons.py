"""micrograd's demo on wengert: a 2-16-16-1 ReLU MLP learns the two moons.

The same model, data, max-margin loss, L2 penalty and learning-rate schedule
as micrograd's demo.ipynb (100 points, 100 steps of SGD), written as the same
micrograd-style loop: forward, loss, zero_grad, backward, update.  The model
owns its tape and drops each step's graph when the next forward pass starts,
so memory stays flat.  When micrograd is installed, the same steps are timed
on it from the same initial weights (their losses agree to rounding).

    python examples/two_moons.py                    # the whole demo
    python examples/two_moons.py --micrograd-steps 0 --no-plot

Optional: tqdm (a progress bar), matplotlib (the decision-boundary plot),
micrograd (the timing comparison).
"""

import argparse
import pathlib
import time

import numpy as np

from wengert import nn, optim
from wengert._demo import (  # data, progress bar and picture plumbing
    make_moons, plot_decision_boundary, progress)


def loss_and_accuracy(model, points, labels, alpha=1e-4):
    """micrograd's demo loss: mean SVM max-margin loss plus an L2 penalty."""
    scores = [model(x)[0] for x in points]
    losses = [(1 + -y * score).relu() for y, score in zip(labels, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    penalty = alpha * sum(p * p for p in model.parameters())
    accuracy = sum((y > 0) == (score.value > 0) for y, score in zip(labels, scores)) / len(labels)
    return data_loss + penalty, accuracy


def train(model, points, labels, steps, quiet=False):
    """micrograd's loop: SGD with the learning rate falling from 1.0 to 0.1.

    Returns the (loss, accuracy) of every step."""
    optimizer = optim.SGD(model.parameters(), lr=1.0)
    history = []
    bar = progress(steps, quiet)
    for step in bar:
        loss, accuracy = loss_and_accuracy(model, points, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.lr = 1.0 - 0.9 * step / steps
        optimizer.step()
        history.append((loss.value, accuracy))    # loss is readable until the next forward
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss.value:.4f}", accuracy=f"{accuracy:.0%}")
        elif not quiet and (step % 10 == 0 or step == steps - 1):
            print(f"step {step:3d}  loss {loss.value:.6f}  accuracy {accuracy:.0%}")
    return history


def train_micrograd(initial_weights, points, labels, steps):
    """The same steps on micrograd from the same weights; returns the losses."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

    model = MLP(2, [16, 16, 1])
    for parameter, value in zip(model.parameters(), initial_weights):
        parameter.data = value
    losses = []
    for step in range(steps):
        scores = [model(list(map(Value, x))) for x in points]
        data_loss = sum((1 + -y * score).relu() for y, score in zip(labels, scores)) \
            * (1.0 / len(scores))
        loss = data_loss + 1e-4 * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        rate = 1.0 - 0.9 * step / steps
        for parameter in model.parameters():
            parameter.data -= rate * parameter.grad
        losses.append(loss.data)
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--micrograd-steps", type=int, default=3,
                        help="steps to time on micrograd (about 1-2 s each; 0 to skip)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", default=".", help="folder for two_moons.png")
    parser.add_argument("--no-plot", action="store_true", help="skip the matplotlib plot")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    options = parser.parse_args(argv)

    rng = np.random.default_rng(options.seed)
    points, labels = make_moons(options.samples, 0.1, rng)
    model = nn.MLP(2, [16, 16, 1], seed=options.seed)
    print(model)
    initial_weights = [p.value for p in model.parameters()]
    point_list, label_list = points.tolist(), labels.tolist()

    start = time.perf_counter()
    history = train(model, point_list, label_list, options.steps, options.quiet)
    loss, accuracy = history[-1]
    seconds = time.perf_counter() - start
    per_step = seconds / options.steps
    print(f"wengert:   {options.steps} steps in {seconds:.2f} s ({per_step * 1e3:.1f} ms per "
          f"step), final loss {loss:.6f}, training accuracy {accuracy:.0%}, "
          f"tape {len(model.tape)} rows")
    result = {"history": history, "loss": loss, "accuracy": accuracy, "seconds": seconds,
              "tape_rows": len(model.tape), "model": model}

    if options.micrograd_steps > 0:
        try:
            import micrograd  # noqa: F401 - only checking that it is installed
        except ImportError:
            print("micrograd is not installed (pip install micrograd): no comparison")
        else:
            steps = options.micrograd_steps
            start = time.perf_counter()
            losses = train_micrograd(initial_weights, point_list, label_list, steps)
            micrograd_per_step = (time.perf_counter() - start) / steps
            print(f"micrograd: {steps} steps in {micrograd_per_step * steps:.2f} s "
                  f"({micrograd_per_step * 1e3:.1f} ms per step; {options.steps} steps would "
                  f"take about {micrograd_per_step * options.steps:.0f} s)")
            print(f"wengert is {micrograd_per_step / per_step:.0f} times faster per step")
            result.update(micrograd_losses=losses, micrograd_seconds_per_step=micrograd_per_step)

    if not options.no_plot:
        pathlib.Path(options.out).mkdir(parents=True, exist_ok=True)
        path = pathlib.Path(options.out) / "two_moons.png"
        try:
            plot_decision_boundary(model, points, labels, path)
            print(f"decision boundary written to {path}")
        except ImportError:
            print("matplotlib is not installed (pip install matplotlib): no plot")
    return result


if __name__ == "__main__":
    main()
