"""Collect ``bench_*.py`` files as test modules when pytest is pointed at this folder.

The default test run (``testpaths = ["tests"]``) never comes here; run the
benchmarks with ``python -m pytest benchmarks --benchmark-only``.
"""
from fnmatch import fnmatch

import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    # Files pytest collects by itself (named on the command line, or matched by
    # a python_files setting that already covers bench_*.py) must not come twice.
    if parent.session.isinitpath(file_path) or any(
        fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")
    ):
        return None
    return pytest.Module.from_parent(parent, path=file_path)
