"""``python -m wengert``: the command line and the benchmark's engine adapters."""

import io
import json
import math
import subprocess
import sys

import pytest

from wengert import __main__ as cli
from wengert import _bench
from wengert.workloads import WORKLOADS, Workload


def _run(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "wengert", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_bench_quick_writes_table_and_json(tmp_path):
    completed = _run(
        ["bench", "--quick", "--workloads", "rosenbrock-10",
         "--engines", "floats,wengert,reference", "--json", "out.json"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    table = completed.stdout
    for word in ("record", "backward", "total", "rosenbrock-10", "floats", "wengert",
                 "reference", "/ reference"):
        assert word in table
    assert "MISMATCH" not in table

    report = json.loads((tmp_path / "out.json").read_text())
    assert {"wengert_version", "python", "platform", "gc_enabled", "settings",
            "skipped_engines", "results", "ratios"} <= set(report)
    assert report["gc_enabled"] is True
    rows = {row["engine"]: row for row in report["results"]}
    assert set(rows) == {"floats", "wengert", "reference"}
    for engine, row in rows.items():
        assert row["workload"] == "rosenbrock-10"
        assert row["ops"] == 71
        assert row["status"] == "ok"
        assert row["repeats"] >= 5
        assert row["record_ns_per_op"] > 0
        assert row["total_ns_per_op"] > 0
        assert row["total_seconds"] > 0
        if engine != "floats":
            assert row["backward_ns_per_op"] > 0
            assert row["gradient_error"] <= _bench.TOLERANCE
    [ratios] = report["ratios"]
    assert ratios["workload"] == "rosenbrock-10"
    assert ratios["floats"] > 0 and ratios["reference"] > 0


def test_bench_quick_replay_rows_and_json(tmp_path):
    completed = _run(
        ["bench", "--quick", "--workloads", "rosenbrock-10",
         "--engines", "floats,wengert,wengert-replay", "--json", "out.json"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    table = completed.stdout
    for words in ("wengert-replay", "/ wengert-replay", "replay: F = wengert.record",
                  "x wengert", "recording for replay"):
        assert words in table
    assert "MISMATCH" not in table

    report = json.loads((tmp_path / "out.json").read_text())
    rows = {row["engine"]: row for row in report["results"]}
    assert set(rows) == {"floats", "wengert", "wengert-replay"}
    replay = rows["wengert-replay"]
    assert replay["status"] == "ok"
    assert replay["record_ns_per_op"] is None and replay["backward_ns_per_op"] is None
    assert replay["total_ns_per_op"] > 0 and replay["total_ns_per_row"] > 0
    assert replay["rows"] >= replay["ops"] == 71  # constants are rows too
    assert replay["points"] == 1 and replay["prepare_seconds"] > 0
    assert replay["gradient_error"] <= _bench.TOLERANCE
    assert rows["wengert"]["points"] == 1 and rows["wengert"]["rows"] is None
    assert report["ratios"][0]["wengert-replay"] > 0

    section = report["replay"]
    assert section["batch_points"] == _bench.BATCH_POINTS
    assert section["overhead_seconds"] > 0
    [row] = section["workloads"]
    assert row["workload"] == "rosenbrock-10" and row["rows"] == replay["rows"]
    assert row["single_ns_per_row"] == pytest.approx(replay["total_ns_per_row"])
    assert row["batch_ns_per_row_per_point"] is None  # the batch engine did not run
    assert row["speedup_over_wengert"] > 0
    assert row["speedup_over_casadi"] is None and row["speedup_over_jax"] is None
    assert row["record_over_eager_record"] > 0


def test_replay_engines_match_wengert():
    workload = WORKLOADS["rosenbrock-10"]
    expected_value = workload.f(list(workload.x0), _bench._workloads.FLOAT_MATH)
    expected_gradient = _bench._expected_gradient(workload)
    for engine in (_bench.ReplayEngine(), _bench.BatchReplayEngine()):
        result = _bench.measure(engine, workload, SETTINGS, expected_value,
                                expected_gradient)
        assert result.status == "ok", result.reason
        assert result.gradient_error <= _bench.TOLERANCE
        assert result.points == engine.points
        assert result.rows == len(engine.recorded) and result.total_ns_per_row > 0
    assert _bench.BatchReplayEngine.points == _bench.BATCH_POINTS


def test_batch_replay_checks_every_point():
    engine = _bench.BatchReplayEngine()
    engine.prepare(TINY)
    values, gradients = engine.forward(TINY, engine.create_inputs(TINY.x0))
    assert engine.value((values, gradients)) == 8.0
    assert engine.gradient(None, (values, gradients)) == [4.0, 2.0]
    values[3] += 1.0
    gradients[5, 1] = 0.0
    assert math.isnan(engine.value((values, gradients)))
    assert all(math.isnan(g) for g in engine.gradient(None, (values, gradients)))


def test_batch_replay_skips_huge_workloads():
    reason = _bench.BatchReplayEngine().unsupported_reason(WORKLOADS["chain-1m"])
    assert "too slow" in reason
    assert _bench.BatchReplayEngine().unsupported_reason(WORKLOADS["fanout"]) is None


def test_missing_optional_engines_are_skipped_with_the_reason(monkeypatch):
    class Missing(_bench.Engine):
        name = "missing"
        install = "pip install missing-engine"

        def __init__(self):
            raise ImportError("No module named 'missing_engine'")

    monkeypatch.setitem(_bench.ENGINES, "missing", Missing)
    out = io.StringIO()
    report = _bench.run(["rosenbrock-10"], ["wengert", "missing"], SETTINGS, out=out)
    assert "missing: skipped, not installed" in out.getvalue()
    assert "pip install missing-engine" in report["skipped_engines"]["missing"]
    assert [row["engine"] for row in report["results"]] == ["wengert"]
    assert report["replay"]["workloads"] == []


def test_peer_engines_when_installed():
    """CasADi and JAX adapters agree with wengert (each skipped when not installed)."""
    workload = WORKLOADS["rosenbrock-10"]
    expected_value = workload.f(list(workload.x0), _bench._workloads.FLOAT_MATH)
    expected_gradient = _bench._expected_gradient(workload)
    ran = 0
    for name in ("casadi", "jax"):
        try:
            engine = _bench.ENGINES[name]()
        except ImportError:
            continue
        result = _bench.measure(engine, workload, SETTINGS, expected_value, expected_gradient)
        assert result.status == "ok", result.reason
        assert result.total_ns_per_op > 0 and result.prepare_seconds > 0
        assert engine.unsupported_reason(WORKLOADS["chain-1m"]) is not None
        ran += 1
    if not ran:
        pytest.skip("neither casadi nor jax is installed")


def test_no_arguments_prints_help(tmp_path):
    completed = _run([], cwd=tmp_path)
    assert completed.returncode == 0
    assert "usage: python -m wengert" in completed.stdout
    assert "bench" in completed.stdout


def test_unknown_names_are_rejected_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--workloads", "rosenbrock-7"])
    assert exit_info.value.code == 2
    assert "choose from chain-10k" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--engines", "torch"])
    assert "choose from floats" in capsys.readouterr().err


TINY = Workload(name="tiny", f=lambda x, m: x[0] * x[1] + x[0], x0=[2.0, 3.0], ops=2)
SETTINGS = _bench.Settings(repeats=5, repeats_when_slow=5, slow_seconds=1.0,
                           min_repeat_seconds=0.0)


class WrongGradient(_bench.FloatEngine):
    """A broken engine: the right value, a wrong gradient."""

    name = "wrong"
    has_backward = True

    def gradient(self, inputs, output):
        return [0.0, 0.0]


class TooDeep(_bench.FloatEngine):
    """An engine whose backward recurses too deeply, like micrograd's."""

    name = "deep"
    has_backward = True

    def backward(self, inputs, output):
        def recurse():
            recurse()

        recurse()


def test_measure_reports_a_gradient_mismatch():
    result = _bench.measure(WrongGradient(), TINY, SETTINGS, 8.0, [4.0, 2.0])
    assert result.status == "mismatch"
    assert result.gradient_error == 1.0
    assert result.total_ns_per_op > 0  # still timed, but flagged
    out = io.StringIO()
    _bench._print_row(result, result, out)
    assert "!!! MISMATCH" in out.getvalue()


def test_measure_reports_recursion_error_without_crashing():
    result = _bench.measure(TooDeep(), TINY, SETTINGS, 8.0, [4.0, 2.0])
    assert result.status == "failed"
    assert "RecursionError" in result.reason
    assert result.total_ns_per_op is None


def test_measure_reports_unsupported_workloads():
    engine = _bench.TapeEngine("no-sin", namespace=object())
    result = _bench.measure(engine, WORKLOADS["chain-10k"], SETTINGS, 0.0, None)
    assert result.status == "unsupported"
    assert "sin" in result.reason


def test_tape_engine_adapters_match():
    workload = WORKLOADS["rosenbrock-10"]
    results = {}
    for engine in (_bench.WengertEngine(), _bench.ReferenceEngine()):
        inputs = engine.create_inputs(workload.x0)
        output = engine.forward(workload, inputs)
        engine.backward(inputs, output)
        results[engine.name] = (engine.value(output), engine.gradient(inputs, output))
    assert results["wengert"][0] == pytest.approx(results["reference"][0], rel=1e-12)
    assert results["wengert"][1] == pytest.approx(results["reference"][1], rel=1e-12)


def test_micrograd_recursion_failure_is_reported():
    pytest.importorskip("micrograd")
    engine = _bench.MicrogradEngine()
    workload = WORKLOADS["fanout"]
    result = _bench.measure(engine, workload, SETTINGS,
                            workload.f(list(workload.x0), _bench._workloads.FLOAT_MATH), None)
    assert result.status == "failed"
    assert "RecursionError" in result.reason
    # micrograd 0.1.0 has no tanh; later versions do.
    has_tanh = hasattr(engine.value_type, "tanh")
    assert (engine.unsupported_reason(WORKLOADS["mlp"]) is None) == has_tanh
