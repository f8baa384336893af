"""Every script in examples/ runs (small sizes, no plotting) and does what it says.

So does the demo.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_tested():
    tested = {"tutorial_graph", "linear_regression", "two_moons", "rosenbrock"}
    assert {path.stem for path in EXAMPLES.glob("*.py")} == tested


def test_tutorial_graph(tmp_path, capsys):
    result = load("tutorial_graph").main(["--out", str(tmp_path), "--no-plot"])
    assert result["g"] == -12.0 and result["grads"] == (-3.0, -3.0, 4.0, -3.0)
    assert (tmp_path / "graph.dot").read_text() == result["dot"]
    assert "g = q * z | value -12 | grad 1" in result["dot"]
    assert "dg/dz = 4.0" in capsys.readouterr().out


def test_linear_regression(capsys):
    result = load("linear_regression").main(["--steps", "100"])
    assert result["w"] == pytest.approx(2.0, abs=1e-5) and result["tape_rows"] == 1
    out = capsys.readouterr().out
    assert "f(5) = 0.000" in out and "f(5) = 10.000" in out
    assert "dJ/dw = -30.000000 (by hand -30.000000)" in out


def test_two_moons_reaches_full_accuracy_and_matches_micrograd(tmp_path, capsys):
    result = load("two_moons").main(["--micrograd-steps", "2", "--no-plot", "--quiet",
                                     "--out", str(tmp_path)])
    assert result["accuracy"] == 1.0 and result["loss"] < 0.05
    losses = [loss for loss, _ in result["history"]]
    assert len(losses) == 100 and losses[-1] < 0.1 * losses[0]
    # same data, weights and rule: micrograd's first two losses are ours
    assert result["micrograd_losses"] == pytest.approx(losses[:2], rel=1e-12)
    # several times faster than micrograd, per step (in practice two orders of magnitude)
    assert result["micrograd_seconds_per_step"] > 4 * result["seconds"] / 100
    out = capsys.readouterr().out
    assert "training accuracy 100%" in out and "times faster per step" in out
    assert not (tmp_path / "two_moons.png").exists()


def test_rosenbrock(capsys):
    results = load("rosenbrock").main(["--n", "20"])
    for method in ("BFGS", "trust-ncg"):
        assert results[method].success
        assert np.abs(results[method].x - 1.0).max() < 1e-4
    assert results["trust-ncg"].nhev > 0
    out = capsys.readouterr().out
    assert "iterations" in out and "Hessian-vector products" in out


def test_demo_writes_its_pictures(tmp_path, capsys):
    from wengert._demo import main

    result = main(tmp_path / "demo", samples=40, steps=50, micrograd_steps=0, quiet=True)
    assert result["accuracy"] == 1.0
    assert (tmp_path / "demo" / "graph.dot").read_text().startswith("digraph wengert")
    assert tmp_path / "demo" / "graph.dot" in result["files"]
    for path in result["files"]:
        assert path.stat().st_size > 0
    assert str((tmp_path / "demo").resolve()) in capsys.readouterr().out
