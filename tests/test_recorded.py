"""wengert.record: replay equals eager recording; batches; guards; files; threads; scipy."""

import math
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import wengert as wg
from wengert._tape import OP_ARITY
from optable import CASES


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def mixed(x):
    """Every op of the table at once, on a smooth domain around x in [-1, 1]."""
    a, b, c = x[0], x[1], x[2]
    u = wg.sigmoid(a) + 1.5                      # in (1.5, 2.5)
    t = wg.tanh(b) * 0.5                         # in (-0.5, 0.5)
    terms = [a + b, a - c, a * b, a / u, u ** c, u ** 2.5, wg.atan2(a, u), wg.hypot(a, u),
             wg.maximum(a, b), wg.minimum(b, c), -a, abs(a), wg.exp(a), wg.expm1(b),
             wg.exp2(c), wg.log(u), wg.log1p(t), wg.log2(u), wg.log10(u), wg.sqrt(u),
             wg.cbrt(c), wg.sin(a), wg.cos(b), wg.tan(t), wg.asin(t), wg.acos(t), wg.atan(c),
             wg.sinh(a), wg.cosh(b), wg.tanh(c), wg.asinh(a), wg.acosh(u), wg.atanh(t),
             wg.erf(a), wg.erfc(b), wg.sigmoid(c), wg.relu(a), wg.softplus(b), 2.0 ** a]
    return terms


def test_every_op_is_exercised_by_the_mixed_function():
    tape = wg.Tape()
    with tape:
        mixed(tape.variables([0.3, -0.2, 0.7]))
    ops = {wg.OP_NAMES[code] for code in tape.to_arrays()["op"]}
    assert ops == set(CASES) | {"input", "const"}


def eager(fun, x):
    """Value and Jacobian by eager recording plus backward, per output."""
    with wg.Tape() as tape:
        xs = tape.variables(x)
        outputs = fun(xs)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        values = np.array([y.value for y in outputs])
        jacobian = np.array([tape.gradient(y, xs) for y in outputs])
    return values, jacobian


def test_replay_equals_eager_recording_for_every_op_at_random_points():
    F = wg.record(mixed, np.zeros(3))
    rng = np.random.default_rng(0)
    for x in rng.uniform(-1, 1, size=(50, 3)):
        values, jacobian = eager(mixed, x)
        np.testing.assert_array_equal(F(x), values)
        np.testing.assert_array_equal(F.jacobian(x), jacobian)


def test_batched_equals_a_loop_of_single_calls():
    F = wg.record(mixed, np.zeros(3))
    X = np.random.default_rng(1).uniform(-1, 1, size=(300, 3))   # several chunks
    values, jacobian = F(X), F.jacobian(X)
    assert values.shape == (300, F.n_outputs) and jacobian.shape == (300, F.n_outputs, 3)
    for k in (0, 7, 8, 255, 256, 299):
        np.testing.assert_array_equal(values[k], F(X[k]))
        np.testing.assert_array_equal(jacobian[k], F.jacobian(X[k]))
    G = wg.record(rosenbrock, np.zeros(5))
    Y = np.random.default_rng(2).uniform(-2, 2, size=(40, 5))
    batch_values, batch_gradients = G.value_and_grad(Y)
    for k in range(40):
        value, gradient = G.value_and_grad(Y[k])
        assert batch_values[k] == value
        np.testing.assert_array_equal(batch_gradients[k], gradient)



def test_batched_sin_and_cos_equal_one_point_at_any_angle():
    """A batch computes sin and cos with one sincos call per point, one point with
    separate sin and cos calls: the results must be the same, bit for bit, from
    tiny to huge angles (where range reduction is hardest) and at inf and NaN."""
    rng = np.random.default_rng(3)
    angles = np.concatenate([
        rng.uniform(-10.0, 10.0, 2000), rng.uniform(-1e6, 1e6, 1000),
        rng.choice([-1.0, 1.0], 2000) * 10.0 ** rng.uniform(-320.0, 308.0, 2000),
        [0.0, -0.0, 5e-324, math.pi, 1e22, 1.7976931348623157e308, math.inf, -math.inf,
         math.nan]])
    F = wg.record(lambda v: [wg.sin(v[0]), wg.cos(v[0])], np.zeros(1))
    values, jacobian = F(angles[:, None]), F.jacobian(angles[:, None])
    sines = [math.sin(a) if math.isfinite(a) else math.nan for a in angles]  # the C library's
    cosines = [math.cos(a) if math.isfinite(a) else math.nan for a in angles]
    np.testing.assert_array_equal(values, np.stack([sines, cosines], axis=1))
    slopes = np.stack([cosines, np.negative(sines)], axis=1)
    np.testing.assert_array_equal(jacobian[:, :, 0], slopes)
    for k in rng.choice(angles.size, 200, replace=False):
        np.testing.assert_array_equal(F(angles[k:k + 1]), values[k])
        np.testing.assert_array_equal(F.jacobian(angles[k:k + 1]), jacobian[k])


@st.composite
def programs(draw):
    """A random expression DAG over 3 inputs that reuses nodes (fan-out)."""
    unary = ["sin", "cos", "tanh", "exp", "sigmoid", "softplus", "atan", "asinh", "erf", "neg"]
    binary = ["add", "sub", "mul", "hypot", "maximum", "div1"]
    steps = []
    for k in range(draw(st.integers(1, 25))):
        available = 3 + k
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(unary)), draw(st.integers(0, available - 1)), 0))
        else:
            steps.append((draw(st.sampled_from(binary)), draw(st.integers(0, available - 1)),
                          draw(st.integers(0, available - 1))))
    return steps


def run_program(steps, xs):
    nodes = list(xs)
    for name, i, j in steps:
        a, b = nodes[i], nodes[j]
        if name == "neg":
            nodes.append(-a)
        elif name == "add":
            nodes.append(a + b)
        elif name == "sub":
            nodes.append(a - b)
        elif name == "mul":
            nodes.append(a * b)
        elif name == "div1":
            nodes.append(a / (1.0 + b * b))
        elif name in ("hypot", "maximum"):
            nodes.append(getattr(wg, name)(a, b))
        else:
            nodes.append(getattr(wg, name)(a))
    return nodes[-1] * 1.0 + nodes[len(nodes) // 2]


@given(programs(), st.lists(st.floats(-2, 2), min_size=3, max_size=3))
def test_replay_equals_eager_on_random_dags(steps, point):
    F = wg.record(lambda xs: run_program(steps, xs), np.zeros(3))
    x = np.array(point)
    values, jacobian = eager(lambda xs: run_program(steps, xs), x)
    value, gradient = F.value_and_grad(x)
    assert value == values[0] or (math.isnan(value) and math.isnan(values[0]))
    np.testing.assert_array_equal(gradient, jacobian[0])


def test_scalar_argument_and_output_shapes():
    F = wg.record(lambda x: [x * x, wg.sin(x)], 0.0)
    assert F(2.0).tolist() == [4.0, math.sin(2.0)]
    assert F.jacobian(2.0).tolist() == [4.0, math.cos(2.0)]
    assert F(np.array([1.0, 2.0])).shape == (2, 2)
    assert F.jacobian(np.array([1.0, 2.0])).shape == (2, 2)
    G = wg.record(lambda x: x ** 3, 1.0)
    assert G(2.0) == 8.0 and G.grad(2.0) == 12.0 and type(G.grad(2.0)) is float
    values, gradients = G.value_and_grad(np.array([1.0, 2.0, 3.0]))
    assert values.tolist() == [1.0, 8.0, 27.0] and gradients.tolist() == [3.0, 12.0, 27.0]
    assert len(G) == len(G.tape) and G.n_inputs == 1 and G.n_outputs == 1


def test_vector_outputs_jacobian_rows_equal_per_output_gradients():
    def fun(v):
        return [v[0] * v[1], wg.exp(v[1]) - v[2], v[2] ** 2, 5.0]

    F = wg.record(fun, np.zeros(3))
    x = np.array([0.5, -1.0, 2.0])
    jacobian = F.jacobian(x)
    assert jacobian.shape == (4, 3)
    for k in range(4):
        np.testing.assert_array_equal(jacobian[k], wg.grad(lambda v, k=k: fun(v)[k])(x))
    np.testing.assert_array_equal(F(x), [-0.5, math.exp(-1.0) - 2.0, 4.0, 5.0])
    with pytest.raises(TypeError, match="jacobian"):
        F.value_and_grad(x)


def test_output_that_is_an_input_or_unrelated():
    F = wg.record(lambda v: [v[0], 2.0, v[1] * 3.0], np.zeros(2))
    assert F.jacobian(np.array([4.0, 5.0])).tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 3.0]]
    assert F(np.array([4.0, 5.0])).tolist() == [4.0, 2.0, 15.0]


@pytest.mark.parametrize("fun, gradient", [
    (lambda v: wg.sin(v[0]), lambda x: [math.cos(x[0]), 0.0]),
    (lambda v: wg.sin(v[1]) * v[0], lambda x: [math.sin(x[1]), x[0] * math.cos(x[1])]),
    (lambda v: wg.exp(wg.sin(v[1])), lambda x: [0.0, math.cos(x[1]) * math.exp(math.sin(x[1]))]),
])
def test_first_computed_row_on_the_last_leaf(fun, gradient):
    # No constants: the first computed row's operand is the last leaf row, where
    # the reverse sweep's register carry must still land in memory.
    x = np.array([0.3, 0.5])
    F = wg.record(fun, x)
    np.testing.assert_allclose(F.grad(x), gradient(x), rtol=1e-15)
    np.testing.assert_allclose(F.grad(np.stack([x, x + 0.1]))[1], gradient(x + 0.1), rtol=1e-15)
    np.testing.assert_allclose(wg.grad(fun)(x), gradient(x), rtol=1e-15)


def test_out_arrays_are_filled_in_place():
    F = wg.record(rosenbrock, np.zeros(4))
    x = np.array([0.1, 0.2, 0.3, 0.4])
    gradient = np.empty(4)
    value, returned = F.value_and_grad(x, out=gradient)
    assert returned is gradient
    np.testing.assert_array_equal(gradient, wg.grad(rosenbrock)(x))
    X = np.tile(x, (3, 1))
    values, gradients = np.empty(3), np.empty((3, 4))
    result = F.value_and_grad(X, out=(values, gradients))
    assert result[0] is values and result[1] is gradients and values.tolist() == [value] * 3
    with pytest.raises(ValueError, match="out"):
        F.grad(x, out=np.empty(5))
    with pytest.raises(ValueError, match="out"):
        F.grad(x, out=np.empty(4, dtype=np.float32))


def test_inputs_are_validated():
    F = wg.record(rosenbrock, np.zeros(4))
    with pytest.raises(ValueError, match="recorded with 4"):
        F(np.zeros(3))
    with pytest.raises(ValueError, match="1-D array"):
        F(np.zeros((2, 2, 4)))
    with pytest.raises(TypeError, match="real"):
        F(["a", "b", "c", "d"])
    with pytest.raises(TypeError, match="real"):
        F(np.zeros(4) + 1j)
    assert F([1, 1, 1, 1]) == 0.0          # ints and lists convert
    with pytest.raises(TypeError, match="callable"):
        wg.record(3.0, np.zeros(2))


def test_strided_and_other_dtype_points_take_the_general_path_with_the_same_results():
    F = wg.record(rosenbrock, np.zeros(4))
    wide = np.array([0.3, 9.0, -1.2, 9.0, 0.7, 9.0, 1.1, 9.0])
    x, v = wide[::2], wide[1::2] / 9.0             # strided views: no contiguous buffer
    contiguous_x, contiguous_v = np.ascontiguousarray(x), np.ascontiguousarray(v)
    value, gradient = F.value_and_grad(x)
    assert (value, gradient.tolist()) == (F.value_and_grad(contiguous_x)[0],
                                          F.value_and_grad(contiguous_x)[1].tolist())
    assert F(x) == F(contiguous_x) and F.jvp(x, v) == F.jvp(contiguous_x, contiguous_v)
    assert F.hvp(x, v).tolist() == F.hvp(contiguous_x, contiguous_v).tolist()
    as_float32 = contiguous_x.astype(np.float32)  # converted, as documented
    assert F(as_float32) == F(as_float32.astype(np.float64))


@pytest.mark.parametrize("make_x0", [
    lambda x: x,                                   # the fast path: float64, 1-D
    lambda x: np.repeat(x, 2)[::2],                # strided float64
    lambda x: x.astype(">f8"),                     # big-endian float64: another dtype object
    lambda x: x.tolist(),                          # a list
    lambda x: x.astype(np.float32).astype(np.float64).astype(np.float32),
])
def test_every_form_of_x0_records_the_same_tape(make_x0):
    x = np.array([0.25, -1.5, 2.0, 0.75])            # exact in float32 too
    reference = wg.record(rosenbrock, x)
    F = wg.record(rosenbrock, make_x0(x))
    assert F.tape.to_arrays()["op"].tolist() == reference.tape.to_arrays()["op"].tolist()
    point = np.array([1.1, 0.3, -0.2, 0.9])
    assert F(point) == reference(point) == rosenbrock(point.tolist())
    assert F.grad(point).tolist() == reference.grad(point).tolist()


# -- guards -------------------------------------------------------------------------------

def branchy(x):
    return x * 2.0 if x > 0 else x * x


def test_a_comparison_is_a_guard_and_retaping_follows_the_branch():
    F = wg.record(branchy, 1.0)
    assert F.n_guards == 1
    assert (F(3.0), F.grad(3.0), F.retapes) == (6.0, 2.0, 0)
    assert (F(-3.0), F.grad(-3.0)) == (9.0, -6.0)
    assert F.retapes == 1                  # recorded again at -3, then followed that branch
    assert F(-1.0) == 1.0 and F.retapes == 1


def test_batches_with_mixed_branches_are_all_correct():
    F = wg.record(branchy, 1.0)
    X = np.array([1.0, -2.0, 3.0, -4.0, 0.5])
    values, gradients = F.value_and_grad(X)
    assert values.tolist() == [2.0, 4.0, 6.0, 16.0, 1.0]
    assert gradients.tolist() == [2.0, -4.0, 2.0, -8.0, 2.0]
    # one recording at -2 serves -4 too, and is kept for the next batch
    assert F.slow_points == 2 and F.retapes == 1
    again = F.value_and_grad(X[::-1])
    assert again[0].tolist() == values[::-1].tolist() and F.retapes == 1


def test_branch_changed_without_retaping():
    F = wg.record(branchy, 1.0, retape=False)
    assert F(2.0) == 4.0
    with pytest.raises(wg.BranchChanged, match=r"guard 0: \(row 1 > row \d+\) was True"):
        F(-1.0)
    with pytest.raises(wg.BranchChanged, match="2 of 3 points"):
        F(np.array([1.0, -1.0, -2.0]))


def test_float_conversion_is_a_guard():
    def baked(x):
        scale = float(x)                  # the value is baked into the tape as a constant
        return x * scale

    F = wg.record(baked, 2.0)
    assert F.n_guards == 1
    assert F(2.0) == 4.0 and F.retapes == 0
    assert F(3.0) == 9.0 and F.grad(3.0) == 3.0 and F.retapes == 1


@pytest.mark.parametrize("convert, kind, same, changed", [
    (int, "int", 2.9, 3.1), (round, "round", 2.1, 2.6), (math.floor, "floor", 2.9, 3.0),
    (math.ceil, "ceil", 2.1, 2.0), (bool, "bool", -1.0, 0.0),
    (lambda v: v.value if isinstance(v, wg.Var) else v, "float", 2.4, 2.5)])
def test_conversions_record_guards(convert, kind, same, changed):
    F = wg.record(lambda x: x * convert(x), 2.4, retape=False)
    assert F.n_guards == 1
    assert F(same) == same * convert(same)           # the same conversion result: replay is valid
    with pytest.raises(wg.BranchChanged, match=kind):
        F(changed)


def test_abs_maximum_and_relu_are_ops_not_guards():
    F = wg.record(lambda v: abs(v[0]) + wg.maximum(v[0], v[1]) + wg.relu(v[1]), np.ones(2),
                  retape=False)
    assert F.n_guards == 0
    assert F(np.array([-3.0, -5.0])) == 3.0 - 3.0 + 0.0
    assert F.grad(np.array([-3.0, -5.0])).tolist() == [-1.0 + 1.0, 0.0]


# -- pickle and files -------------------------------------------------------------------

def test_pickle_round_trip_keeps_fun_when_it_pickles():
    F = wg.record(rosenbrock, np.zeros(6))
    G = pickle.loads(pickle.dumps(F))
    x = np.linspace(-1, 1, 6)
    assert G(x) == F(x)
    np.testing.assert_array_equal(G.grad(x), F.grad(x))
    H = pickle.loads(pickle.dumps(wg.record(branchy, 1.0)))
    assert H(-2.0) == 4.0                                 # fun came along: retaping works


def test_pickle_without_a_picklable_fun_raises_branch_changed():
    F = wg.record(lambda x: x * 2.0 if x > 0 else -x, 1.0)
    G = pickle.loads(pickle.dumps(F))
    assert G(5.0) == 10.0
    with pytest.raises(wg.BranchChanged, match="not available"):
        G(-1.0)


def test_save_and_load(tmp_path):
    F = wg.record(mixed, np.zeros(3))
    path = tmp_path / "mixed.npz"
    F.save(path)
    G = wg.load(path)
    x = np.array([0.2, -0.4, 0.6])
    np.testing.assert_array_equal(G(x), F(x))
    np.testing.assert_array_equal(G.jacobian(x), F.jacobian(x))
    assert "loaded" in repr(G)
    B = wg.record(branchy, 1.0)
    B.save(tmp_path / "branchy.npz")
    loaded = wg.load(tmp_path / "branchy.npz")
    assert loaded(2.0) == 4.0
    with pytest.raises(wg.BranchChanged):
        loaded(-2.0)


def corrupt_arrays(rng, arrays):
    """One random, plausible-looking corruption of a recording's arrays."""
    arrays = {name: array.copy() for name, array in arrays.items()}
    name = rng.choice(sorted(arrays))
    array = arrays[name]
    how = rng.integers(6)
    if how == 0 and array.size:                         # a random entry, any value
        index = rng.integers(array.size)
        if array.dtype.kind == "f":
            array[index] = rng.choice([np.nan, np.inf, -1e300, rng.normal()])
        else:
            info = np.iinfo(array.dtype)
            array[index] = rng.integers(info.min, info.max, dtype=np.int64, endpoint=True)
    elif how == 1 and array.size:                       # an entry off by a little
        index = rng.integers(array.size)
        array[index] = array[index] + rng.choice([-2, -1, 1, 2, 40])
    elif how == 2:                                      # wrong length
        arrays[name] = array[:-1] if array.size and rng.integers(2) else np.append(array, array[:1])
    elif how == 3:                                      # wrong dtype
        arrays[name] = array.astype(rng.choice([np.int64, np.float32, np.uint8, np.int32]))
    elif how == 4:                                      # wrong shape
        arrays[name] = array.reshape(1, -1)
    elif how == 5 and array.size:                       # shuffled
        rng.shuffle(array)
    return arrays


def test_thousands_of_corrupted_recordings_never_crash(tmp_path):
    F = wg.record(lambda v: [mixed(v)[k] for k in range(0, 39, 3)] + [branchy(v[0])],
                  np.array([0.3, -0.2, 0.7]))
    good = F._replay.arrays()
    path = tmp_path / "good.npz"
    F.save(path)
    raw = path.read_bytes()
    rng = np.random.default_rng(12345)
    rejected = accepted = 0
    for trial in range(3000):
        if trial % 3 == 0:                              # corrupt the file's bytes
            data = bytearray(raw)
            for _ in range(rng.integers(1, 8)):
                data[rng.integers(len(data))] = rng.integers(256)
            if trial % 2:
                data = data[:rng.integers(len(data))]
            target = tmp_path / "bad.npz"
            target.write_bytes(bytes(data))
        else:                                           # corrupt the arrays, save a valid zip
            arrays = corrupt_arrays(rng, good)
            target = tmp_path / "bad.npz"
            np.savez(target, meta=np.array([1, 0, 0], dtype=np.int64), **arrays)
        try:
            loaded = wg.load(target)
        except ValueError:
            rejected += 1
            continue
        accepted += 1
        x = np.linspace(0.1, 0.3, loaded.n_inputs)
        try:
            loaded(x)
            loaded.jacobian(np.tile(x, (9, 1)))
        except wg.BranchChanged:
            pass
    assert rejected > 2000 and accepted > 0


def test_load_rejects_specific_corruptions(tmp_path):
    F = wg.record(rosenbrock, np.zeros(3))
    good = F._replay.arrays()

    def save_and_load(**changes):
        arrays = dict(good, **changes)
        np.savez(tmp_path / "x.npz", meta=np.array([1, 0, 1], dtype=np.int64), **arrays)
        return wg.load(tmp_path / "x.npz")

    save_and_load()                                        # the unchanged arrays load
    bad_op = good["op"].copy()
    bad_op[5] = 200
    with pytest.raises(ValueError, match="unknown op code"):
        save_and_load(op=bad_op)
    computed = np.flatnonzero(np.asarray(OP_ARITY)[good["op"]] > 0)
    forward = good["arg0"].copy()
    forward[computed[0]] = computed[0]                     # an operand that is not earlier
    with pytest.raises(ValueError, match="earlier row"):
        save_and_load(arg0=forward)
    with pytest.raises(ValueError, match="dtype"):
        save_and_load(arg1=good["arg1"].astype(np.int64))
    with pytest.raises(ValueError, match="rows"):
        save_and_load(value=good["value"][:-1])
    with pytest.raises(ValueError, match="INPUT"):
        save_and_load(inputs=np.array([1, 2, computed[0]], dtype=np.int32))
    with pytest.raises(ValueError, match="sentinel"):
        value = good["value"].copy()
        value[0] = 1.0
        save_and_load(value=value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable"):
        wg.load(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="not a readable"):
        wg.load(tmp_path / "missing.npz")


def test_replay_constructor_validates_too():
    with pytest.raises(ValueError, match="numpy array"):
        wg.recorded.Replay(*([[0]] * 10))


# -- threads --------------------------------------------------------------------------------

def in_threads(call, count):
    """[call(0), ..., call(count - 1)], each run on its own thread, all at once;
    an exception in any thread is raised here."""
    results, errors = [None] * count, []

    def worker(k):
        try:
            results[k] = call(k)
        except Exception as error:  # noqa: BLE001 - reported to the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_calls_equal_serial_calls():
    F = wg.record(rosenbrock, np.zeros(50))
    rng = np.random.default_rng(3)
    points = [rng.uniform(-2, 2, size=(64, 50)) for _ in range(8)]
    expected = [F.value_and_grad(p) for p in points]
    singles = [F.value_and_grad(p[0]) for p in points]

    def call(k):
        for _ in range(10):
            result = (F.value_and_grad(points[k]), F.value_and_grad(points[k][0]))
        return result

    results = in_threads(call, 8)
    for k in range(8):
        (values, gradients), (value, gradient) = results[k]
        np.testing.assert_array_equal(values, expected[k][0])
        np.testing.assert_array_equal(gradients, expected[k][1])
        assert value == singles[k][0]
        np.testing.assert_array_equal(gradient, singles[k][1])


def test_concurrent_hessians_on_a_fresh_recording():
    """Threads that ask a new recording for its first Hessians find its sparsity
    together (the analysis releases the GIL) and must all get the serial results."""
    x = np.linspace(-1.0, 1.0, 300)
    v = np.cos(np.arange(300.0))
    expected_hessian = wg.record(rosenbrock, x).hessian(x)
    expected_hvp = wg.record(rosenbrock, x).hvp(x, v)
    for _ in range(5):
        F = wg.record(rosenbrock, x)
        results = in_threads(lambda k, F=F: (F.hessian(x), F.hvp(x, v),
                                             F.hessian(x, sparse=True)), 4)
        for hessian, hvp, sparse in results:
            np.testing.assert_array_equal(hessian, expected_hessian)
            np.testing.assert_array_equal(hvp, expected_hvp)
            np.testing.assert_array_equal(sparse.toarray(), expected_hessian)


# -- scipy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS"])
def test_scipy_minimize_rosenbrock_100(method):
    optimize = pytest.importorskip("scipy.optimize")
    F = wg.record(rosenbrock, np.zeros(100))
    result = optimize.minimize(F.value_and_grad, np.zeros(100), jac=True, method=method,
                               options={"maxiter": 5000, "gtol": 1e-8})
    assert result.success, result.message
    np.testing.assert_allclose(result.x, np.ones(100), atol=1e-4)
    assert result.fun < 1e-8
