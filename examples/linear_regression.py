"""Linear regression y_hat = w * x by gradient descent, the tutorial way.

The sample of the classic "backpropagation from scratch" tutorial: x = 1, 2,
3, 4 and y = 2 x, the weight starting at 0, the mean squared error, learning
rate 0.01.  wengert computes the gradient that the tutorial derives by hand
(dJ/dw = mean(2 x (w x - y))).  The loop shows the explicit tape control: the
weight is recorded once, the tape marked, and each step's rows dropped with
rewind(), so the tape never grows.

    python examples/linear_regression.py --steps 100
"""

import argparse

import wengert as wg

X = [1.0, 2.0, 3.0, 4.0]
Y = [2.0, 4.0, 6.0, 8.0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.01)
    options = parser.parse_args(argv)

    tape = wg.Tape()
    w = tape.var(0.0)                   # the parameter: an input variable
    start = tape.mark()                 # everything after this is one step's graph
    print(f"prediction before training: f(5) = {w.value * 5.0:.3f}")
    for step in range(options.steps):
        loss = sum((w * x - y) ** 2 for x, y in zip(X, Y)) / len(X)
        loss.backward()
        by_hand = sum(2 * x * (w.value * x - y) for x, y in zip(X, Y)) / len(X)
        if step % 10 == 0:
            print(f"step {step:3d}: w = {w.value:.6f}, loss = {loss.value:.8f}, "
                  f"dJ/dw = {w.grad:.6f} (by hand {by_hand:.6f})")
        w.value -= options.lr * w.grad  # update in place
        tape.rewind(start)              # drop this step's rows; w stays
    print(f"prediction after training: f(5) = {w.value * 5.0:.3f}  (w = {w.value:.6f}, "
          f"tape {len(tape)} row)")
    return {"w": w.value, "tape_rows": len(tape)}


if __name__ == "__main__":
    main()
