"""wengert.nn: micrograd's modules on a tape, flat memory, save and load."""

import doctest

import numpy as np
import pytest

import wengert as wg
from wengert import nn, optim


def run_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_doctests():
    run_doctests(nn)


def test_reprs_and_parameter_counts():
    model = nn.MLP(2, [16, 16, 1], seed=0)
    assert repr(model) == "MLP(2, [16, 16, 1], activation='relu'): 337 parameters"
    assert [repr(layer) for layer in model.layers] == [
        "Layer(2, 16, activation='relu')", "Layer(16, 16, activation='relu')",
        "Layer(16, 1, activation='linear')"]
    assert repr(model.layers[0].neurons[0]) == "Neuron(2, activation='relu')"
    assert repr(nn.Neuron(3, nonlin=False)) == "Neuron(3, activation='linear')"
    assert len(nn.Layer(3, 4).parameters()) == 16
    # micrograd's order: per neuron its weights, then its bias
    neuron = model.layers[0].neurons[0]
    assert model.parameters()[:3] == [neuron.w[0], neuron.w[1], neuron.b]


def test_initialisation_is_micrograds():
    model = nn.MLP(2, [16, 16, 1], seed=3)
    state = model.state_dict()
    weights = np.concatenate([state[f"layers.{i}.weight"].ravel() for i in range(3)])
    assert np.all(np.abs(weights) <= 1.0) and weights.std() > 0.4
    assert all(not state[f"layers.{i}.bias"].any() for i in range(3))
    assert nn.MLP(2, [3], seed=3).state_dict()["layers.0.weight"].tolist() == \
        nn.MLP(2, [3], seed=3).state_dict()["layers.0.weight"].tolist()


@pytest.mark.parametrize("activation, function", [
    ("relu", lambda z: max(z, 0.0)), ("tanh", np.tanh), ("linear", lambda z: z)])
def test_neuron_forward_and_gradient_by_hand(activation, function):
    neuron = nn.Neuron(3, activation=activation, seed=1)
    neuron.b.value = 0.25
    x = [0.5, -1.0, 2.0]
    out = neuron(x)
    w = [p.value for p in neuron.w]
    z = float(np.dot(w, x) + 0.25)
    assert out.value == pytest.approx(function(z), rel=1e-15, abs=1e-15)
    out.backward()
    slope = {"relu": float(z > 0), "tanh": 1 - np.tanh(z) ** 2, "linear": 1.0}[activation]
    assert [p.grad for p in neuron.w] == pytest.approx([slope * xi for xi in x], rel=1e-14)
    assert neuron.b.grad == pytest.approx(slope, rel=1e-14)


def test_mlp_gradient_matches_central_differences_through_predict():
    model = nn.MLP(3, [5, 4, 2], activation="tanh", seed=2)
    x = [0.3, -0.7, 1.1]

    def loss_of_predict():
        out = model.predict(x)
        return float(out[0] ** 2 + 3 * out[1])

    out = model(x)
    loss = out[0] ** 2 + 3 * out[1]
    loss.backward()
    assert loss.value == pytest.approx(loss_of_predict(), rel=1e-13)
    for parameter in model.parameters()[::3]:
        value, h = parameter.value, 1e-6
        parameter.value = value + h
        up = loss_of_predict()
        parameter.value = value - h
        down = loss_of_predict()
        parameter.value = value
        assert parameter.grad == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_same_outputs_and_gradients_as_micrograd():
    from micrograd.engine import Value
    from micrograd.nn import MLP as MicrogradMLP

    model = nn.MLP(2, [8, 8, 1], seed=4)
    reference = MicrogradMLP(2, [8, 8, 1])
    for mine, theirs in zip(model.parameters(), reference.parameters()):
        theirs.data = mine.value
    for x in ([0.5, -1.5], [2.0, 0.1]):
        ours = (model(x)[0] - 1.0) ** 2
        theirs = (reference(list(map(Value, x))) - 1.0) ** 2
        ours.backward()
        reference.zero_grad()
        theirs.backward()
        assert ours.value == pytest.approx(theirs.data, rel=1e-14)
        assert [p.grad for p in model.parameters()] == pytest.approx(
            [p.grad for p in reference.parameters()], rel=1e-12, abs=1e-15)


def test_micrograd_loop_keeps_memory_flat_over_1000_steps():
    rng = np.random.default_rng(0)
    data = [(x.tolist(), float(np.sin(x).sum())) for x in rng.normal(size=(4, 2))]
    model = nn.MLP(2, [4, 1], activation="tanh", seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    parameter_rows = len(model.tape)
    rows, allocated, losses = set(), set(), []
    for step in range(1000):
        loss = sum((model(x)[0] - y) ** 2 for x, y in data) / len(data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.value)            # still readable after the update
        if step >= 1:
            rows.add(len(model.tape))
            allocated.add(model.tape.allocated_nbytes)
    assert parameter_rows == 17
    assert len(rows) == 1 and len(allocated) == 1          # the tape does not grow
    assert rows.pop() < parameter_rows + 200
    assert losses[-1] < 0.05 * losses[0]


def test_vars_of_the_previous_step_become_invalid():
    model = nn.MLP(2, [3, 1], seed=0)
    loss = model([1.0, 2.0])[0] ** 2
    loss.backward()
    value = loss.value
    assert loss.value == value                       # readable until the next forward pass
    model([1.0, 2.0])
    with pytest.raises(RuntimeError, match="rewind"):
        _ = loss.value
    # without a backward pass there is no rewind: forward passes accumulate
    size = len(model.tape)
    first = model([0.0, 1.0])[0]
    model([0.0, 1.0])
    assert len(model.tape) > size and isinstance(first.value, float)


def test_given_tape_is_managed_by_the_user():
    tape = wg.Tape()
    model = nn.MLP(2, [3, 1], tape=tape, seed=0)
    start = tape.mark()
    sizes = []
    for _ in range(3):
        loss = model([1.0, 2.0])[0] ** 2
        loss.backward()
        sizes.append(len(tape))
    assert sizes[0] < sizes[1] < sizes[2]                # no automatic rewind
    tape.rewind(start)
    assert len(tape) == len(model.parameters())
    with pytest.raises(TypeError, match="wengert.Tape"):
        nn.MLP(2, [1], tape="mine")


def test_zero_grad_exists_and_backward_overwrites():
    model = nn.MLP(2, [3, 1], seed=0)
    loss = model([1.0, 2.0])[0] ** 2
    loss.backward()
    first = [p.grad for p in model.parameters()]
    loss.backward()
    model.zero_grad()
    assert [p.grad for p in model.parameters()] == first


def test_predict_records_nothing_and_matches_the_forward_pass():
    model = nn.MLP(2, [16, 16, 1], seed=5)
    size = len(model.tape)
    grid = np.random.default_rng(1).normal(size=(5000, 2))
    scores = model.predict(grid)
    assert scores.shape == (5000, 1) and len(model.tape) == size
    assert model.predict(grid[0]).shape == (1,)
    assert scores[7, 0] == pytest.approx(model(grid[7].tolist())[0].value, rel=1e-13)
    assert nn.Neuron(2, seed=0).predict(grid[:3]).shape == (3,)
    with pytest.raises(ValueError, match=r"\(2,\) or \(k, 2\)"):
        model.predict(np.zeros(3))


def test_save_and_load_round_trip(tmp_path):
    model = nn.MLP(3, [4, 2], activation="tanh", seed=6)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["__config__", "layers.0.bias", "layers.0.weight",
                                      "layers.1.bias", "layers.1.weight"]
        assert data["layers.0.weight"].shape == (4, 3)
    copy = nn.load(path)
    assert repr(copy) == repr(model)
    x = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]])
    assert np.array_equal(copy.predict(x), model.predict(x))
    for cls_model in (nn.Layer(2, 3, seed=1), nn.Neuron(2, activation="tanh", seed=1)):
        cls_model.save(tmp_path / "part.npz")
        loaded = nn.load(tmp_path / "part.npz")
        assert repr(loaded) == repr(cls_model)
        assert np.array_equal(loaded.predict([[1.0, 2.0]]), cls_model.predict([[1.0, 2.0]]))


def test_load_state_dict_checks_and_updates_in_place():
    model = nn.Layer(2, 3, seed=0)
    state = model.state_dict()
    weight = model.neurons[0].w[0]
    state["weight"][0, 0] = 42.0
    model.load_state_dict(state)
    assert weight.value == 42.0                       # the same Var, updated in place
    with pytest.raises(ValueError, match=r"shape \(3,\).*needs \(3, 2\)"):
        model.load_state_dict({"weight": np.zeros(3), "bias": np.zeros(3)})
    with pytest.raises(KeyError, match="bias"):
        model.load_state_dict({"weight": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="non-finite"):
        model.load_state_dict({"weight": np.full((3, 2), np.nan), "bias": np.zeros(3)})


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a wengert model"):
        nn.load(tmp_path / "other.npz")


@pytest.mark.parametrize("build, error, message", [
    (lambda: nn.MLP(2, 16), TypeError, r"write \[16\]"),
    (lambda: nn.MLP(2, []), ValueError, "at least one layer"),
    (lambda: nn.MLP(0, [1]), ValueError, "nin must be a positive integer"),
    (lambda: nn.Layer(2, 2.5), ValueError, "nout must be a positive integer"),
    (lambda: nn.Neuron(2, activation="sigmoidal"), ValueError, "unknown activation"),
])
def test_constructor_errors(build, error, message):
    with pytest.raises(error, match=message):
        build()
