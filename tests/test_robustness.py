"""Misuse from Python never crashes the interpreter or returns a silently wrong value.

Each test is a reproducer from a review of the compiled core; before the fix,
the first five crashed the interpreter.
"""

import numbers
import threading

import numpy as np
import pytest

import wengert as wg
from wengert._tape import Replay, Workspace


def test_a_replay_cannot_be_rebuilt_or_made_empty():
    F = wg.record(lambda x: x[0] * x[1], np.zeros(2))
    replay = F._replay
    arrays = wg.record(lambda x: x[0] + x[1] + x[2], np.zeros(3))._replay.arrays()
    replay.__init__(*arrays.values())                  # a no-op: built once, in __cinit__
    assert replay.n_inputs == 2 and F(np.array([2.0, 3.0])) == 6.0
    with pytest.raises(TypeError):
        Replay.__new__(Replay)
    assert not hasattr(replay, "_give_back")
    with pytest.raises(TypeError):
        Workspace(replay)


def test_a_var_made_by_new_raises_instead_of_crashing():
    orphan = wg.Var.__new__(wg.Var)
    for use in (lambda: orphan.value, lambda: orphan + 1.0, lambda: 2.0 * orphan,
                lambda: wg.sin(orphan), lambda: orphan.grad, lambda: orphan < 1.0,
                lambda: orphan.backward()):
        with pytest.raises(TypeError, match="not created by wengert"):
            use()
    assert "not created by wengert" in repr(orphan)
    with pytest.raises(TypeError):
        wg.Tape().var(1.0) + orphan


def test_huge_marks_and_capacities_are_rejected():
    tape = wg.Tape()
    for mark in (2**63 - 1, 2**31, 1, -1):
        with pytest.raises(ValueError, match="outside"):
            tape.rewind(mark)
    assert tape.var(1.0).value == 1.0
    for capacity in (2**63 - 1, 2**31, 0):
        with pytest.raises((ValueError, OverflowError)):
            wg.Tape(capacity=capacity)


def test_guard_lookups_are_range_checked():
    F = wg.record(lambda x: x[0] * x[1], np.zeros(2))
    with pytest.raises(IndexError, match="does not exist"):
        F._replay.describe_guard(0)
    with pytest.raises(ValueError, match="2 inputs"):
        F._replay.first_failed_guard(np.zeros(1))
    with pytest.raises(ValueError, match="non-empty"):
        wg.record(lambda x: 1.0, np.zeros(0))


def test_a_number_whose_float_rewinds_the_tape_cannot_corrupt_it():
    tape = wg.Tape()
    x = tape.var(2.0)
    mark = tape.mark()
    for _ in range(20):
        x = x * 1.0

    class Sneaky:
        def __float__(self):
            tape.rewind(mark)
            return 3.0

    numbers.Real.register(Sneaky)
    base = tape.var(1.0)
    with pytest.raises(RuntimeError, match="dropped"):
        x * Sneaky()
    rows = tape.to_arrays()
    assert np.all(rows["arg0"][1:] < np.arange(1, len(rows["op"])))
    y = base * 2.0 if len(tape) > base.index else tape.var(1.0) * 2.0
    y.backward()


def test_two_threads_cannot_sweep_one_tape_at_once():
    tape = wg.Tape()
    x = tape.var(1.0001)
    y = x
    for _ in range(400_000):
        y = y * 1.0000001
    expected = 1.0000001 ** 400_000
    outcomes = []

    def worker():
        for _ in range(10):
            try:
                outcomes.append(tape.gradient(y, [x])[0])
            except RuntimeError as error:
                assert "another thread" in str(error)
                outcomes.append("refused")

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 20
    assert all(o == "refused" or o == pytest.approx(expected, rel=1e-9) for o in outcomes)


def test_round_with_digits_is_replayed_at_the_recording_point():
    F = wg.record(lambda x: x * round(x, 2), 1.234, retape=False)
    assert F(1.234) == pytest.approx(1.234 * 1.23)
    assert F.retapes == 0
    with pytest.raises(wg.BranchChanged):
        F(1.5)


def test_comparing_with_a_variable_of_another_tape_is_guarded():
    c = wg.Tape().var(0.0)
    F = wg.record(lambda x: x * x if c < x else -x, 1.0)
    assert F.n_guards == 1
    assert F(3.0) == 9.0 and F(-2.0) == 2.0
    G = wg.record(lambda x: x * x if x > c else -x, 1.0)
    assert G(-2.0) == 2.0


def test_out_may_be_the_input_itself():
    F = wg.record(lambda x: x * x if x > 0 else -x, 1.0)
    x = np.array([2.0, -3.0])
    F(x, out=x)
    assert x.tolist() == [4.0, 3.0]


def test_a_branch_with_another_output_shape_is_reported():
    F = wg.record(lambda x: x * 2.0 if x > 0 else [x, x], 1.0)
    with pytest.raises(TypeError, match="different number of outputs"):
        F(-1.0)


def test_a_recorded_tape_is_frozen_for_variables_that_escaped():
    escaped = []

    def fun(x):
        escaped.append(x[0])
        return x[0] * x[1]

    F = wg.record(fun, np.array([1.0, 2.0]))
    leaked = escaped[0]
    with pytest.raises(RuntimeError, match="recorded function"):
        leaked * 3.0
    with pytest.raises(RuntimeError, match="recorded function"):
        leaked.value = 5.0
    with pytest.raises(RuntimeError, match="recorded function"):
        leaked.tape.rewind(0)
    assert F(np.array([3.0, 4.0])) == 12.0
    copy = F.tape
    assert len(copy) == len(F) and (copy.var(1.0) * 2.0).value == 2.0   # a copy records freely
