"""The README stays true: its code runs, its set-up commands are the CI's; doctests pass."""

import doctest
import importlib
import pathlib

import pytest

import wengert
from readme import code_blocks, setup_commands

MODULES = ["wengert", "wengert._tape", "wengert.functional", "wengert.reference",
           "wengert.recorded",
           "wengert.nn", "wengert.optim", "wengert.optimize", "wengert.graph", "wengert.bench"]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)              # examples may write files
    blocks = code_blocks("python")
    assert len(blocks) >= 4
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)


def test_setup_section_has_exactly_the_two_commands():
    install_and_run, install_and_test = setup_commands()
    assert install_and_run.startswith("pip install . && python -m wengert ")
    assert install_and_test == 'pip install ".[test]" && python -m pytest'
    ci = (pathlib.Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert install_and_test in ci


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, name)          # module globals, as doctest.testmod
    if name == "wengert._tape":
        # Cython functions are not found by module inspection: collect their docstrings too.
        tests += [test for obj_name in dir(module)
                  for test in finder.find(getattr(module, obj_name), f"{name}.{obj_name}",
                                          globs=dict(vars(module)))
                  if getattr(getattr(module, obj_name), "__module__", None) == name
                  and test.examples]
    seen = set()
    for test in tests:
        if test.name in seen:
            continue
        seen.add(test.name)
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_version():
    assert wengert.__version__ == "0.1.0"
