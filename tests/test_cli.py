"""``python -m wengert``: the bench command, its adapters, checks, isolation and report."""

import io
import json
import math
import subprocess
import sys
import textwrap
import time

import pytest

from wengert import __main__ as cli
from wengert import _bench, bench
from wengert.workloads import WORKLOADS, Workload

# Engines that CI installs (``.[test]``): their adapters must run, never skip.
ALWAYS_INSTALLED = {"floats", "wengert", "wengert-replay", "wengert-replay-batch",
                    "reference", "micrograd", "autograd", "casadi"}


def _installed(name):
    try:
        _bench.ENGINES[name]()
    except ImportError:
        return False
    return True


# torch and jax are heavy optional peers: tested where installed, and where they are not,
# the benchmark must report them as skipped with the reason (test below).
INSTALLED = [name for name in _bench.ENGINES if _installed(name)]

TINY = Workload(name="tiny", f=lambda x, m: x[0] * x[1] + x[0], x0=[2.0, 3.0], ops=2)
SETTINGS = _bench.Settings(repeats=5, repeats_when_slow=5, slow_seconds=1.0,
                           min_repeat_seconds=0.0, timeout_seconds=60.0)


def _run(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "wengert", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )


def _oracles(workload):
    return bench.expected_results(workload)


# -- the command line, end to end -------------------------------------------------------

def test_bench_quick_writes_table_and_json_schema(tmp_path):
    completed = _run(
        ["bench", "--quick", "--workloads", "rosenbrock-10",
         "--engines", "floats,wengert,wengert-replay,reference", "--json", "out.json"],
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    table = completed.stdout
    for word in ("record", "backward", "total", "replay", "x floats", "x micrograd",
                 "rosenbrock-10", "(floor)", "reference", "replay: F = wengert.record"):
        assert word in table
    assert "MISMATCH" not in table
    # The progress display goes to stderr, one line per cell when not on a terminal.
    assert "[  4/4]" in completed.stderr and "rosenbrock-10 x reference" in completed.stderr

    report = json.loads((tmp_path / "out.json").read_text())
    assert report["schema"] == _bench.SCHEMA
    assert set(report) == {"schema", "versions", "machine", "gc_enabled", "settings",
                           "workloads", "skipped_engines", "results"}
    assert report["versions"]["wengert"] and report["versions"]["python"]
    assert set(report["versions"]["engines"]) == {"floats", "wengert", "wengert-replay",
                                                  "reference"}
    assert {"platform", "machine", "cpu", "cpu_count", "python"} <= set(report["machine"])
    assert report["gc_enabled"] is True
    settings = report["settings"]
    assert settings["repeats"] >= 5 and settings["isolated"] is True
    assert settings["timeout_seconds"] > 0 and settings["tolerance"] == bench.TOLERANCE
    assert report["workloads"] == {"rosenbrock-10": {
        "ops": 71, "inputs": 10, "description": WORKLOADS["rosenbrock-10"].description}}
    assert report["skipped_engines"] == {}

    rows = {row["engine"]: row for row in report["results"]}
    assert list(rows) == ["floats", "wengert", "wengert-replay", "reference"]
    for engine, row in rows.items():
        assert set(row) == set(_bench.RESULT_FIELDS)
        assert row["workload"] == "rosenbrock-10" and row["ops"] == 71
        assert row["status"] == "ok", row["reason"]
        assert row["repeats"] == len(row["raw_repeats_ns"]) >= 5
        assert all(len(split) == 2 and split[0] > 0 for split in row["raw_repeats_ns"])
        assert row["ns_per_op"] > 0 and row["seconds_per_evaluation"] > 0
        assert row["cell_seconds"] > 0
        if engine == "floats":
            assert row["gradient_errors"] == {} and row["floor_ns_per_op"] is None
            continue
        # Every ratio is to plain floats timed in the same process, repeats interleaved.
        assert len(row["floor_raw_repeats_ns"]) >= 5
        assert row["ratio_to_floor"] == pytest.approx(row["ns_per_op"] / row["floor_ns_per_op"])
        # Checked against two independent oracles (an engine is not its own oracle).
        assert set(row["gradient_errors"]) == {"wengert", "reference"} - {engine}
        assert max(row["gradient_errors"].values()) <= bench.TOLERANCE
    assert rows["wengert"]["record_ns_per_op"] > 0 and rows["wengert"]["backward_ns_per_op"] > 0
    assert rows["wengert"]["total_ns_per_op"] == pytest.approx(
        rows["wengert"]["record_ns_per_op"] + rows["wengert"]["backward_ns_per_op"])
    replay = rows["wengert-replay"]
    assert replay["total_ns_per_op"] is None and replay["replay_ns_per_op"] > 0
    assert replay["rows"] >= 71 and replay["ns_per_row"] > 0 and replay["prepare_seconds"] > 0
    assert set(replay["extras"]) == {"overhead_seconds", "record_seconds",
                                     "eager_record_seconds", "record_over_eager"}


USER_ENGINES = '''
import os
import time

import wengert
from wengert.bench import Engine


class Good(Engine):
    """wengert's eager engine, written against the public API only."""

    name = "good"
    math = wengert

    def create_inputs(self, x0):
        tape = wengert.Tape()
        return tape, tape.variables(x0)

    def forward(self, workload, inputs):
        with inputs[0]:
            return workload.f(inputs[1], wengert)

    def backward(self, inputs, output):
        output.backward()

    def value(self, output):
        return output.value

    def gradient(self, inputs, output):
        return [x.grad for x in inputs[1]]


class Wrong(Good):
    """The right value, a gradient off by a factor."""

    name = "wrong"

    def gradient(self, inputs, output):
        return [1.001 * g for g in super().gradient(inputs, output)]


class Crash(Good):
    name = "crash"

    def forward(self, workload, inputs):
        os._exit(3)


class Hang(Good):
    name = "hang"

    def forward(self, workload, inputs):
        time.sleep(600)
'''


def test_user_engines_by_module_and_class_each_in_its_own_process(tmp_path):
    (tmp_path / "user_engines.py").write_text(USER_ENGINES)
    completed = _run(
        ["bench", "--quick", "--workloads", "rosenbrock-10", "--timeout", "4",
         "--engine", "user_engines:Good", "--engine", "user_engines:Wrong",
         "--engine", "user_engines:Crash", "--engine", "user_engines:Hang",
         "--json", "out.json"],
        cwd=tmp_path,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr  # the mismatch
    rows = {row["engine"]: row for row in json.loads((tmp_path / "out.json").read_text())
            ["results"]}
    # Without --engines only the floor and wengert run beside the user's engines.
    assert list(rows) == ["floats", "wengert", "good", "wrong", "crash", "hang"]
    assert rows["good"]["status"] == "ok" and rows["good"]["ns_per_op"] > 0
    assert rows["wrong"]["status"] == "mismatch"
    assert "gradient off wengert's" in rows["wrong"]["reason"]
    assert "gradient off reference's" in rows["wrong"]["reason"]
    assert rows["wrong"]["ns_per_op"] > 0  # still timed, but marked
    assert rows["crash"]["status"] == "failed" and "exit status 3" in rows["crash"]["reason"]
    assert rows["hang"]["status"] == "timeout" and "4 s" in rows["hang"]["reason"]
    table = completed.stdout
    assert "!!! MISMATCH: wrong on rosenbrock-10" in table
    assert "crashed (exit status 3)" in table and "timeout" in table


def test_plot_without_matplotlib_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    status = _bench.main(["rosenbrock-10"], ["wengert"], quick=True, plot_path="x.png")
    assert status == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err


def test_plot_draws_a_png(tmp_path):
    report = _bench.run(["rosenbrock-10"], ["floats", "wengert", "wengert-replay"], SETTINGS,
                        out=io.StringIO(), isolate=False, progress=False)
    path = tmp_path / "bench.png"
    _bench.plot(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_arguments_prints_help(tmp_path):
    completed = _run([], cwd=tmp_path)
    assert completed.returncode == 0
    assert "usage: python -m wengert" in completed.stdout
    assert "bench" in completed.stdout and "demo" in completed.stdout


def test_unknown_names_are_rejected_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--workloads", "rosenbrock-7"])
    assert exit_info.value.code == 2
    assert "choose from chain-10k" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--engines", "tensorflow"])
    assert "choose from floats" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--engine", "no_colon"])
    assert "module:Class" in capsys.readouterr().err


def test_a_user_engine_that_cannot_be_loaded_exits_2(capsys):
    assert _bench.main(["rosenbrock-10"], ["floats", "no_such_module_here:Engine"]) == 2
    assert "cannot load engine no_such_module_here:Engine" in capsys.readouterr().err


def test_demo_without_the_demo_module_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wengert._demo", None)
    assert cli.main(["demo", "somewhere"]) == 2
    assert "demo is not available" in capsys.readouterr().err


# -- adapters ---------------------------------------------------------------------------

def test_engines_that_ci_installs_are_installed():
    assert ALWAYS_INSTALLED <= set(INSTALLED)


@pytest.mark.parametrize("module, engine", [("torch", "torch"), ("jax", "jax-jit"),
                                            ("casadi", "casadi"), ("autograd", "autograd")])
def test_an_engine_that_is_not_installed_is_reported_with_its_reason(module, engine,
                                                                     monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)        # importing it raises ImportError
    out = io.StringIO()
    report = _bench.run(["rosenbrock-10"], ["floats", engine], SETTINGS, out=out,
                        isolate=False, progress=False)
    assert "not installed" in report["skipped_engines"][engine]
    assert engine in out.getvalue()


@pytest.mark.parametrize("name", INSTALLED)
def test_every_installed_adapter_agrees_on_a_tiny_workload(name):
    engine = _bench.ENGINES[name]()
    assert engine.name == name
    value, gradient = bench.check_engine(engine, "rosenbrock-10")
    assert value == pytest.approx(WORKLOADS["rosenbrock-10"].f(
        list(WORKLOADS["rosenbrock-10"].x0), _bench._workloads.FLOAT_MATH), rel=1e-12)
    assert (gradient is None) == (name == "floats")
    assert engine.unsupported_reason(WORKLOADS["rosenbrock-10"]) is None


def test_replay_engines_report_rows_and_points():
    workload = WORKLOADS["rosenbrock-10"]
    expected = _oracles(workload)
    for engine in (_bench.ReplayEngine(), _bench.BatchReplayEngine()):
        result = _bench.measure(engine, workload, SETTINGS, *expected)
        assert result.status == "ok", result.reason
        assert result.points == engine.points
        assert result.rows == len(engine.recorded) and result.ns_per_row > 0
        assert result.replay_ns_per_op > 0 and result.total_ns_per_op is None
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


def test_size_limits_are_reported_as_unsupported():
    assert "too slow" in _bench.BatchReplayEngine().unsupported_reason(WORKLOADS["chain-1m"])
    assert _bench.BatchReplayEngine().unsupported_reason(WORKLOADS["fanout"]) is None
    for engine_class in (_bench.TorchEngine, _bench.AutogradEngine, _bench.JaxEagerEngine,
                         _bench.JaxJitEngine, _bench.CasadiEngine):
        assert engine_class.max_ops < WORKLOADS["chain-1m"].ops


def test_micrograd_lacks_sin_and_is_retried_past_its_recursion_limit():
    engine = _bench.MicrogradEngine()
    assert "micrograd has no sin" in engine.unsupported_reason(WORKLOADS["chain-10k"])
    # micrograd 0.1.0 has no tanh; later versions do.
    assert (engine.unsupported_reason(WORKLOADS["mlp"]) is None) == hasattr(
        engine.value_type, "tanh")
    workload = WORKLOADS["rosenbrock-1000"]  # ~1,000 deep: past the default limit
    result = _bench.measure(engine, workload, SETTINGS, *_oracles(workload))
    assert result.status == "ok", result.reason
    assert result.recursion_limit > 1000
    assert "RecursionError at the default recursion limit" in result.note
    assert sys.getrecursionlimit() < result.recursion_limit  # restored afterwards
    out = io.StringIO()
    _bench.print_report([_bench.asdict(result)], SETTINGS, out)
    assert "recursion limit raised to" in out.getvalue()


class Logged(_bench.FloatEngine):
    """Plain floats that log the name given at each evaluation to ``log``."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def forward(self, workload, inputs):
        self.log.append(self.name)
        return super().forward(workload, inputs)


def test_the_floor_is_timed_in_repeats_alternating_with_the_engine():
    log = []
    engine, floor = Logged("engine", log), Logged("floor", log)
    workload = WORKLOADS["rosenbrock-10"]
    record, backward, raw, number, floor_raw = _bench._time(engine, workload, SETTINGS, floor)
    assert len(raw) == len(floor_raw) == SETTINGS.repeats and number >= 1
    assert backward == 0 and [record, 0] in raw
    # Calibration runs each once (the engine, then the floor); then whole repeats
    # alternate, the floor first, so runs of one engine's evaluations alternate too.
    runs = [name for k, name in enumerate(log) if k == 0 or log[k - 1] != name]
    assert runs == ["engine"] + ["floor", "engine"] * SETTINGS.repeats


def test_only_the_engines_own_calls_are_timed(monkeypatch):
    """On a clock that only the engine moves: forward costs 10, making the
    backward callable 1,000 (untimed), running it 100."""
    now = [0]

    class Stepped(_bench.FloatEngine):
        has_backward = True

        def forward(self, workload, inputs):
            now[0] += 10
            return super().forward(workload, inputs)

        def backward_call(self, inputs, output):
            now[0] += 1_000

            def run():
                now[0] += 100
            return run

    monkeypatch.setattr(_bench.time, "perf_counter_ns", lambda: now[0])
    assert _bench._time_once(Stepped(), WORKLOADS["rosenbrock-10"], True) == (10, 100)
    assert _bench._time_once(Stepped(), WORKLOADS["rosenbrock-10"], False) == (10, 0)


# -- checks and failures, in process ----------------------------------------------------

class FloatsWithGradient(_bench.FloatEngine):
    name = "floats-with-gradient"
    has_backward = True
    third_party = True

    def gradient(self, inputs, output):
        return [3.0 + 1.0, 2.0]  # d(x0 x1 + x0) at (2, 3)


class WrongGradient(FloatsWithGradient):
    """A broken engine: the right value, a wrong gradient."""

    name = "wrong"

    def gradient(self, inputs, output):
        return [0.0, 0.0]


class Deep(FloatsWithGradient):
    """An engine whose backward recurses 5,000 deep: fails at the default limit only."""

    name = "deep"

    def backward(self, inputs, output):
        def recurse(depth):
            return 0 if depth == 0 else recurse(depth - 1)

        recurse(5_000)


class Bottomless(FloatsWithGradient):
    name = "bottomless"

    def backward(self, inputs, output):
        def recurse():
            recurse()

        recurse()


TINY_EXPECTED = (8.0, {"wengert": [4.0, 2.0], "reference": [4.0, 2.0]})


def test_the_cross_check_catches_a_wrong_engine():
    result = _bench.measure(WrongGradient(), TINY, SETTINGS, *TINY_EXPECTED)
    assert result.status == "mismatch"
    assert result.gradient_errors == {"wengert": 1.0, "reference": 1.0}
    assert result.ns_per_op > 0  # still timed, but flagged
    out = io.StringIO()
    _bench.print_report([_bench.asdict(result)], SETTINGS, out)
    assert "!!! MISMATCH: wrong on tiny" in out.getvalue()
    assert _bench.exit_status({"results": [_bench.asdict(result)]}) == 1
    with pytest.raises(bench.EngineMismatch, match="gradient off wengert's"):
        bench.check_engine(WrongGradient(), WORKLOADS["rosenbrock-10"])


def test_the_second_oracle_is_checked_too():
    problems = bench.compare("x", 8.0, [4.0, 2.0], 8.0,
                             {"wengert": [4.0, 2.0], "reference": [4.0, 2.5]})
    assert problems == ["gradient off reference's by 0.12 (relative)"]
    assert bench.compare("reference", 8.0, [4.0, 2.5], 8.0,
                         {"wengert": [4.0, 2.5], "reference": [0.0, 0.0]}) == []
    assert "value" in bench.compare("x", 9.0, None, 8.0, {})[0]


def test_relative_error_rules():
    assert bench.relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert bench.relative_error([1.0], [1.0, 2.0]) == math.inf
    assert bench.relative_error([math.nan], [math.nan]) == 0.0
    assert bench.relative_error([math.nan], [1.0]) == math.inf
    assert bench.relative_error([0.0], [2.5e-323]) == 0.0  # underflowed gradients agree
    assert bench.relative_error([1.5, 2.0], [1.0, 2.0]) == 0.25


def test_recursion_error_is_retried_with_the_limit_raised():
    result = _bench.measure(Deep(), TINY, SETTINGS, *TINY_EXPECTED)
    assert result.status == "ok", result.reason
    assert result.recursion_limit >= 100_000 and result.ns_per_op > 0
    result = _bench.measure(Bottomless(), TINY, SETTINGS, *TINY_EXPECTED)
    assert result.status == "failed"
    assert "RecursionError" in result.reason and "even with the recursion limit raised" \
        in result.reason
    assert result.ns_per_op is None


def test_unsupported_workloads_are_reported_not_run():
    engine = _bench.TapeEngine("no-sin", namespace=object())
    result = _bench.measure(engine, WORKLOADS["chain-10k"], SETTINGS, 0.0, {})
    assert result.status == "unsupported" and "sin" in result.reason


def test_missing_optional_engines_are_skipped_with_the_reason(monkeypatch):
    class Missing(bench.Engine):
        name = "missing"
        install = "pip install missing-engine"

        def __init__(self):
            raise ImportError("No module named 'missing_engine'")

    monkeypatch.setitem(_bench.ENGINES, "missing", Missing)
    out = io.StringIO()
    report = _bench.run(["rosenbrock-10"], ["wengert", "missing"], SETTINGS, out=out,
                        isolate=False, progress=False)
    assert "missing: skipped, not installed" in out.getvalue()
    assert "pip install missing-engine" in report["skipped_engines"]["missing"]
    assert [row["engine"] for row in report["results"]] == ["wengert"]


def test_load_engine(tmp_path, monkeypatch):
    (tmp_path / "user_engines.py").write_text(USER_ENGINES + "\nclass NotAnEngine:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    good = bench.load_engine("user_engines:Good")
    assert issubclass(good, bench.Engine)
    bench.check_engine(good(), "mlp")
    with pytest.raises(ValueError, match="module:Class"):
        bench.load_engine("user_engines")
    with pytest.raises(TypeError, match="not a subclass"):
        bench.load_engine("user_engines:NotAnEngine")
    with pytest.raises(AttributeError, match="no class 'Nope'"):
        bench.load_engine("user_engines:Nope")
    with pytest.raises(ImportError):
        bench.load_engine("no_such_module_here:Engine")


def test_engine_protocol_defaults():
    class Minimal(bench.Engine):
        pass

    engine = Minimal()
    assert engine.name == "minimal" and engine.third_party and not engine.replays
    with pytest.raises(NotImplementedError, match="create_inputs"):
        engine.create_inputs([1.0])
    with pytest.raises(NotImplementedError, match="set math"):
        engine.forward(TINY, [1.0, 2.0])
    assert "limit" in type("Small", (Minimal,), {"max_ops": 1})().unsupported_reason(TINY)


def test_progress_lines_when_not_on_a_terminal():
    stream = io.StringIO()
    progress = _bench.Progress(2, stream)
    progress.start("mlp", "wengert")
    progress.finish({"status": "ok", "cell_seconds": 1.25})
    progress.close()
    assert "[  1/2]" in stream.getvalue() and "mlp x wengert ... ok (1.2 s)" in stream.getvalue()


def test_user_engine_subprocess_finds_modules_on_the_parents_path(tmp_path, monkeypatch):
    (tmp_path / "path_engines.py").write_text(USER_ENGINES)
    monkeypatch.syspath_prepend(str(tmp_path))
    workload = WORKLOADS["rosenbrock-10"]
    value, gradients = _oracles(workload)
    spec = {"engine": "path_engines:Good", "name": "good", "workload": workload.name,
            "settings": _bench.asdict(SETTINGS), "expected_value": value,
            "expected_gradients": gradients}
    result = _bench.run_cell_in_subprocess(spec)
    assert result["status"] == "ok", result["reason"]


def test_readme_style_cli_example_is_documented():
    text = textwrap.dedent(cli.__doc__)
    assert "--engine my_engine:MyEngine" in text


def test_quick_budget_skips_slow_engines_after_checking_them():
    class Slow(FloatsWithGradient):
        name = "slow"

        def backward(self, inputs, output):
            time.sleep(0.05)

    settings = _bench.Settings(**dict(_bench.asdict(SETTINGS), max_evaluation_seconds=0.01))
    result = _bench.measure(Slow(), TINY, settings, *TINY_EXPECTED)
    assert result.status == "skipped" and "budget of --quick" in result.reason
    assert result.gradient_errors == {"wengert": 0.0, "reference": 0.0}  # checked first
    assert result.ns_per_op is None
    assert _bench.exit_status({"results": [_bench.asdict(result)]}) == 0


def test_readme_adapter_example_runs_from_the_command_line(tmp_path):
    from readme import code_blocks

    blocks = [block for block in code_blocks("python") if "(Engine):" in block]
    assert blocks, "README.md has no adapter example (a python block subclassing Engine)"
    (tmp_path / "my_engine.py").write_text(blocks[0])
    completed = _run(["bench", "--quick", "--workloads", "rosenbrock-10", "--engines", "floats",
                      "--engine", "my_engine:TinyEngine", "--json", "out.json"], cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = json.loads((tmp_path / "out.json").read_text())["results"]
    assert [(row["engine"], row["status"]) for row in rows] == [("floats", "ok"), ("tiny", "ok")]
