"""Sparse Hessians: the structure found from op codes, its colouring, and the
compressed second-order sweep that fills it.

The oracle is the dense Hessian built column by column from ``F.hvp(x, e_j)``,
which runs the batched forward-over-reverse sweep and knows nothing about
structure or colours.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import wengert as wg
from wengert._tape import OP_ARITY, OP_CURVATURE, OP_NAMES
from optable import CASES, KINKS, LEAVES
from test_dag import BINARY, OPS, programs


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def hvp_columns(F, x):
    """The Hessian from n Hessian-vector products (no structure involved)."""
    n = x.size
    return F.hvp(np.tile(x, (n, 1)), np.eye(n)).T


def structure(F):
    return F._replay.hessian_structure()


def check_colouring(F):
    """No two columns of one colour share a row of the pattern."""
    indptr, indices, colors, n_colors = structure(F)
    for i in range(len(indptr) - 1):
        row_colors = colors[indices[indptr[i]:indptr[i + 1]]]
        assert len(set(row_colors.tolist())) == row_colors.size, f"row {i} repeats a colour"
    assert n_colors == colors.max() + 1


# -- the op table's curvature declaration -----------------------------------------

def second_partials(name, point):
    """(daa, dab, dbb) of op ``name`` at ``point``, from hvp columns of the bare op."""
    case = CASES[name]
    if case.constant_second:                     # pow_const: a ** constant
        F = wg.record(lambda v: case.apply(v[0], point[1]), np.array(point[:1]))
        H = hvp_columns(F, np.array(point[:1]))
        return H[0, 0], 0.0, 0.0
    x = np.array(point)
    F = wg.record(lambda v: case.apply(*v), x)
    H = hvp_columns(F, x)
    if x.size == 1:
        return H[0, 0], 0.0, 0.0
    return H[0, 0], H[0, 1], H[1, 1]


@pytest.mark.parametrize("name", [name for name in OP_NAMES if name not in LEAVES])
def test_op_curvature_matches_second_partials(name):
    """An op declares which second partials can be nonzero (op_curvature): the
    declared-zero ones are zero at every point, kinks included, and each
    declared one is nonzero somewhere."""
    case = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    points = [[float(rng.uniform(low, high)) for low, high in case.domain] for _ in range(20)]
    if name in KINKS:                            # on the kink: a == 0, or a tie a == b
        points += [[0.0] * len(case.domain), [1.5] * len(case.domain)]
    declared = OP_CURVATURE[OP_NAMES.index(name)]
    seen = set()
    for point in points:
        for key, value in zip(("aa", "ab", "bb"), second_partials(name, point)):
            if key not in declared:
                assert value == 0.0, f"{name}: d2/d{key} = {value} at {point}, declared zero"
            elif value != 0.0:
                seen.add(key)
    arity = OP_ARITY[OP_NAMES.index(name)]
    if not CASES[name].constant_second and arity == 2:
        assert seen == declared, f"{name}: declared {sorted(declared)}, seen {sorted(seen)}"
    else:
        assert seen == declared & {"aa"}


# -- structure and colouring --------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 10, 100, 1000])
def test_rosenbrock_structure_is_tridiagonal_with_three_colours(n):
    x = np.linspace(-1.2, 1.1, n)
    F = wg.record(rosenbrock, x)
    rows, cols = F.hessian_sparsity()
    expected = {(i, j) for i in range(n) for j in range(n) if abs(i - j) <= 1}
    assert set(zip(rows.tolist(), cols.tolist())) == expected
    assert structure(F)[3] == min(n, 3)          # n = 2: a full row, one colour each
    check_colouring(F)


def test_rosenbrock_sparse_hessian_is_exact():
    x = np.linspace(-1.2, 1.1, 200)
    F = wg.record(rosenbrock, x)
    H = F.hessian(x)
    np.testing.assert_allclose(H, hvp_columns(F, x), rtol=1e-14, atol=1e-12)
    assert np.array_equal(H, H.T)
    # the closed form, entry by entry
    diagonal = np.zeros(x.size)
    diagonal[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    diagonal[1:] += 200
    np.testing.assert_allclose(np.diag(H), diagonal, rtol=1e-14)
    np.testing.assert_allclose(np.diag(H, 1), -400 * x[:-1], rtol=1e-14)
    assert np.count_nonzero(H) == 3 * x.size - 2


def test_sparse_result_is_a_csr_array_equal_to_the_dense_one():
    sparse = pytest.importorskip("scipy.sparse")
    x = np.linspace(-1.0, 1.0, 50)
    F = wg.record(rosenbrock, x)
    S = F.hessian(x, sparse=True)
    assert isinstance(S, sparse.csr_array) and S.shape == (50, 50) and S.nnz == 148
    np.testing.assert_array_equal(S.toarray(), F.hessian(x))
    batch = F.hessian(np.stack([x, -x]), sparse=True)
    assert len(batch) == 2
    np.testing.assert_array_equal(batch[1].toarray(), F.hessian(-x))


def test_separable_function_has_a_diagonal_hessian_and_one_colour():
    x = np.array([0.3, -1.2, 2.0, 0.7, 1.1])
    F = wg.record(lambda v: sum(wg.sin(t) * t for t in v), x)
    rows, cols = F.hessian_sparsity()
    assert rows.tolist() == cols.tolist() == list(range(5))
    assert structure(F)[3] == 1
    expected = np.diag(2 * np.cos(x) - x * np.sin(x))
    np.testing.assert_allclose(F.hessian(x), expected, rtol=1e-14, atol=1e-15)


def test_linear_pieces_add_no_structure():
    """abs, relu, maximum, minimum and linear ops have zero second partials: an
    input that reaches the output only through them has an empty Hessian row."""
    x = np.array([0.5, -2.0, 1.5, 3.0])

    def f(v):
        return (abs(v[0]) + wg.relu(v[1]) * 2 - wg.maximum(v[2], 1.0)
                + wg.minimum(v[0], v[2]) + v[3] ** 2)

    F = wg.record(f, x)
    rows, cols = F.hessian_sparsity()
    assert rows.tolist() == cols.tolist() == [3]
    np.testing.assert_array_equal(F.hessian(x), np.diag([0.0, 0.0, 0.0, 2.0]))


def test_dense_hessian_takes_one_colour_per_column():
    x = np.array([0.1, 0.2, 0.3])
    F = wg.record(lambda v: wg.exp(v[0] + v[1] + v[2]), x)
    rows, cols = F.hessian_sparsity()
    assert rows.size == 9 and structure(F)[3] == 3 and plan(F, x) is None
    np.testing.assert_allclose(F.hessian(x), np.full((3, 3), math.exp(0.6)), rtol=1e-15)
    np.testing.assert_array_equal(F.hessian(x, sparse=True).toarray(), F.hessian(x))


def test_rows_after_the_output_and_unused_inputs():
    """An input recorded after the output, or never used, has a zero row."""
    def f(v):
        y = v[0] ** 2 * v[2] + wg.sin(v[2])
        return y
    x = np.array([1.5, 4.0, 0.5, -1.0, 2.0])
    F = wg.record(f, x)
    H = F.hessian(x)
    expected = np.zeros((5, 5))
    expected[0, 0] = 2 * x[2]
    expected[0, 2] = expected[2, 0] = 2 * x[0]
    expected[2, 2] = -math.sin(x[2])
    np.testing.assert_allclose(H, expected, rtol=1e-15)


def test_structure_holds_on_another_branch():
    """A guard that fails re-records at the new point; that recording gets its
    own structure."""
    def f(v):
        if v[0] > 0:
            return sum(v[i] * v[i + 1] for i in range(len(v) - 1))
        return sum(t ** 3 for t in v)

    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    F = wg.record(f, x)
    assert F.hessian_sparsity()[0].size == 8           # off-diagonals only
    y = -x
    np.testing.assert_allclose(F.hessian(y), np.diag(6 * y), rtol=1e-15)
    assert F.retapes == 1
    assert F.hessian_sparsity()[0].size == 5           # the diagonal


def test_scalar_input_and_batches():
    F = wg.record(lambda t: t ** 3, 2.0)
    assert F.hessian(2.0) == 12.0
    np.testing.assert_array_equal(F.hessian(np.array([1.0, 3.0])), [6.0, 18.0])
    x = np.linspace(-1, 1, 30)
    R = wg.record(rosenbrock, x)
    batch = R.hessian(np.stack([x, 2 * x, x ** 2]))
    for k, point in enumerate([x, 2 * x, x ** 2]):
        np.testing.assert_array_equal(batch[k], R.hessian(point))


def test_eager_hessian_uses_the_structure():
    x = np.linspace(-1.0, 1.0, 40)
    np.testing.assert_allclose(wg.hessian(rosenbrock)(x),
                               hvp_columns(wg.record(rosenbrock, x), x), rtol=1e-14, atol=1e-12)


def test_eager_hessian_takes_the_lanes_and_builds_no_plan():
    """One Hessian per recording: building a plan would cost more than it saves."""
    x = np.linspace(-1.0, 1.0, 40)
    F = wg.record(rosenbrock, x)
    lanes = F._replay.hessian_point(x, use_plan=False)
    assert F._replay.hessian_plan is None              # not asked for: not built
    np.testing.assert_array_equal(wg.hessian(rosenbrock)(x), lanes)
    assert plan(F, x) is not None


# -- random banded functions: compressed Hessian against hvp columns -----------------

def apply(program_instructions, inputs):
    """One program on Vars; its output is the sum of the results nobody reads."""
    nodes = list(inputs)
    for name, i, j, constant in program_instructions:
        nodes.append(OPS[name](wg, nodes[i], nodes[j], constant))
    read = {k for name, i, j, _ in program_instructions
            for k in ((i, j) if name in BINARY else (i,))}
    y = nodes[-1]
    for k in range(len(inputs), len(nodes) - 1):
        if k not in read:
            y = y + nodes[k]
    return y


@given(programs(), st.integers(3, 12), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_banded_random_programs_match_hvp_columns(program, blocks, stride, seed):
    """f(x) = sum over overlapping windows of x of one random DAG: a banded
    Hessian with shared subexpressions inside every window."""
    inputs, instructions = program
    width = len(inputs)
    n = stride * (blocks - 1) + width
    x = np.random.default_rng(seed).uniform(-2.0, 2.0, n)

    def f(v):
        return sum((apply(instructions, [v[b * stride + k] for k in range(width)])
                    for b in range(blocks)), 0.0)

    F = wg.record(f, x)
    dense = hvp_columns(F, x)
    H = F.hessian(x)
    lanes = F._replay.hessian_point(x, use_plan=False)
    finite = np.isfinite(dense).all()
    if finite:
        scale = np.maximum(np.abs(dense), 1.0)
        assert np.all(np.abs(H - dense) <= 1e-11 * scale), np.max(np.abs(H - dense) / scale)
        assert np.all(np.abs(lanes - dense) <= 1e-11 * scale)
    assert np.array_equal(H, H.T, equal_nan=True)
    assert np.array_equal(lanes, lanes.T, equal_nan=True)
    found = F.hessian_sparsity()
    if plan(F, x) is not None:
        check_plan(F, x)
    if found is not None:
        check_colouring(F)
        outside = np.ones((n, n), dtype=bool)
        outside[found] = False
        assert np.all(dense[outside] == 0.0), "a nonzero outside the structure"
        assert np.all(H[outside] == 0.0)


# -- the plan: the structure's entries as straight-line code -------------------------

def plan(F, x):
    """The plan of F's recording, which its first Hessian builds."""
    F.hessian(x)
    return F._replay.hessian_plan


def check_plan(F, x):
    """Every index of the plan in bounds; a move reads a slot of an earlier row; a
    product writes an entry on or above the diagonal."""
    found = plan(F, x)
    arrays = found.arrays()
    slots, moves, products = found.size
    indptr, indices = structure(F)[:2]
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    for name in ("ones", "target", "source", "left", "right"):
        assert np.all((0 <= arrays[name]) & (arrays[name] < slots)), name
    assert np.all(arrays["source"] < arrays["target"])
    assert np.all((0 <= arrays["entry"]) & (arrays["entry"] < indptr[-1]))
    assert np.all(indices[arrays["entry"]] >= rows[arrays["entry"]])
    assert arrays["gradient_end"].size == 2 * arrays["gradient_row"].size
    assert arrays["curved_end"].size == 3 * arrays["curved_row"].size
    for ends, total in ((arrays["gradient_end"], moves), (arrays["curved_end"], products)):
        assert np.all(np.diff(ends) >= 0) and np.all(ends >= 0)
        assert (ends[-1] if ends.size else 0) == total
    assert np.all(np.diff(arrays["gradient_row"]) > 0)
    assert np.all(np.diff(arrays["curved_row"]) > 0)


@pytest.mark.parametrize("n", [4, 10, 100])
def test_rosenbrock_hessian_takes_the_plan(n):
    """Per term, four moves (x[i]'s square, x[i + 1] - x[i] ** 2, 1 - x[i]) and five
    products (the squares' second partials times their operands' gradients); the
    lane sweeps give the same entries, to rounding."""
    x = np.linspace(-1.2, 1.1, n)
    F = wg.record(rosenbrock, x)
    assert plan(F, x).size == (n + 4 * (n - 1), 4 * (n - 1), 5 * (n - 1))
    check_plan(F, x)
    H = F.hessian(x)
    assert np.array_equal(H, H.T)
    lanes = F._replay.hessian_point(x, use_plan=False)
    np.testing.assert_allclose(H, lanes, rtol=1e-15, atol=1e-13)
    np.testing.assert_array_equal(F.hessian(x, sparse=True).toarray(), H)


def test_the_lanes_where_they_cost_less():
    """Eight inputs through a chain of 30 curved rows: every row depends on all
    eight, so the plan would move 8 gradient entries and form 36 products per row,
    against 3 x 8 lane steps.  The lanes are kept."""
    def f(v):
        t = sum(v[:8], 0.0)
        for _ in range(30):
            t = wg.sin(t) * 0.5 + t
        return t + sum(u * u for u in v[8:])

    x = np.linspace(0.1, 0.9, 20)
    F = wg.record(f, x)
    assert structure(F)[3] == 8 and plan(F, x) is None
    np.testing.assert_allclose(F.hessian(x), hvp_columns(F, x), rtol=1e-13, atol=1e-13)


# -- inf and NaN partials: the lanes' plain products fall back to exact zeros -------

@pytest.mark.parametrize("dense", [False, True], ids=["compressed", "dense"])
def test_infinite_partials_leave_other_entries_exact(dense):
    """sqrt'(0) = inf: a plain product would spread NaN (inf * 0) into every lane
    the sqrt row touches; the Hessian must still hold exact zeros and finite
    entries wherever the function's second derivatives are finite."""
    def f(v):
        y = wg.sqrt(v[0]) * v[1] + v[1] * v[2]
        return y + v[0] * v[2] * v[1] if dense else y

    x = np.array([0.0, 1.0, 2.0])
    F = wg.record(f, x)
    assert structure(F)[3] == (3 if dense else 2)
    assert (plan(F, x) is None) == dense          # compressed: the plan, then the lanes
    inf = math.inf
    expected = np.array([[-inf, inf, 1.0 if dense else 0.0],
                         [inf, 0.0, 1.0],
                         [1.0 if dense else 0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(F.hessian(x), expected)
    np.testing.assert_array_equal(hvp_columns(F, x), expected)
    np.testing.assert_array_equal(F.hessian(x, sparse=True).toarray(), expected)
    np.testing.assert_array_equal(F._replay.hessian_point(x, use_plan=False), expected)
    for j, direction in enumerate(np.eye(3)):    # one point: the one-lane fast path
        np.testing.assert_array_equal(F.hvp(x, direction), expected[:, j])



def test_a_nan_from_the_plan_falls_back_to_the_lanes_with_exact_zeros():
    """sqrt'(0) = inf meets a zero: the plan's plain products give NaN at (0, 0),
    (0, 1) and (0, 2); the lanes with exact zeros give the Hessian, whose (0, 1)
    entry is cos(2) * inf."""
    def f(v):
        return wg.sin(wg.sqrt(v[0]) * v[1] + v[2]) + sum(wg.sin(t) for t in v[3:])

    x = np.array([0.0, 0.0, 2.0] + [0.5] * 7)
    F = wg.record(f, x)
    assert structure(F)[3] == 3 and plan(F, x) is not None
    expected = np.diag([0.0, 0.0, -math.sin(2.0)] + [-math.sin(0.5)] * 7)
    expected[0, 1] = expected[1, 0] = -math.inf
    np.testing.assert_array_equal(F.hessian(x), expected)
    np.testing.assert_array_equal(F.hessian(x, sparse=True).toarray(), expected)
    np.testing.assert_array_equal(hvp_columns(F, x), expected)


def test_first_hessians_in_two_threads_at_once():
    """Both threads may run the analysis (it releases the GIL) and set the
    structure; a Hessian already running keeps the arrays it started with."""
    import threading

    def work(F, results, errors):
        try:
            for _ in range(3):
                results.append(F.hessian(x, sparse=True).toarray())
        except Exception as error:               # reported below, in the main thread
            errors.append(error)

    x = np.linspace(-1.0, 1.0, 3000)
    expected = wg.record(rosenbrock, x).hessian(x, sparse=True).toarray()
    for _ in range(3):
        F = wg.record(rosenbrock, x)
        results, errors = [], []
        threads = [threading.Thread(target=work, args=(F, results, errors)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors and len(results) == 6
        for result in results:
            np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("at_zero", [False, True], ids=["finite", "sqrt-at-zero"])
def test_dense_hessian_in_several_blocks_of_lanes(at_zero):
    """150 inputs, a dense Hessian: three blocks of lanes, of which only the first
    computes the adjoints; at x0 = 0 every block reruns with exact zeros."""
    n = 150
    x = np.linspace(0.5, 1.5, n)
    if at_zero:
        x[0] = 0.0

    def f(v):
        total = sum(v[1:], v[0])
        return wg.sqrt(v[0]) * v[1] + total * total + sum(t ** 3 for t in v) / 6.0

    F = wg.record(f, x)
    assert structure(F)[3] == n
    expected = 2.0 + np.diag(x)
    expected[0, 0] += -0.25 * x[1] * x[0] ** -1.5 if x[0] else -math.inf
    expected[0, 1] = expected[1, 0] = 2.0 + (0.5 / math.sqrt(x[0]) if x[0] else math.inf)
    H = F.hessian(x)
    np.testing.assert_allclose(H, expected, rtol=1e-13)
    np.testing.assert_array_equal(H, H.T)
    np.testing.assert_allclose(H, hvp_columns(F, x), rtol=1e-13)


def test_what_callers_do_to_returned_arrays_does_not_reach_the_sweeps():
    """scipy keeps the index arrays it is given and eliminate_zeros rewrites them
    in place; the structure handed out is read-only, the sweeps keep their own."""
    m = 50
    F = wg.record(lambda x: sum((x[i] * x[i + m]) ** 2 for i in range(m))
                  + sum(t * t for t in x), np.zeros(2 * m))
    S = F.hessian(np.zeros(2 * m), sparse=True)
    S.eliminate_zeros()                          # at 0, the cross terms are zero
    assert S.nnz < structure(F)[0][-1]
    x = np.ones(2 * m)
    expected = 2.0 * np.eye(2 * m) + 2.0 * np.eye(2 * m)
    expected[np.arange(m), np.arange(m) + m] = expected[np.arange(m) + m, np.arange(m)] = 4.0
    np.testing.assert_array_equal(F.hessian(x), expected)
    np.testing.assert_array_equal(F.hessian(x, sparse=True).toarray(), expected)
    for array in structure(F)[:3]:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
