"""Build the compiled core. Metadata lives in pyproject.toml.

Set WENGERT_DEBUG=1 to compile with bounds and initialisation checks on (the
debug CI job); the default build has them off, with IEEE (C) division.
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("WENGERT_DEBUG", "0") == "1"

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "initializedcheck": debug,
    "wraparound": False,
    "cdivision": True,          # C division: 1/0 = inf as IEEE-754, no ZeroDivisionError
    "embedsignature": True,
}

if sys.platform == "win32":
    compile_args = ["/O2"]
else:
    # -O3 without -ffast-math: IEEE semantics (NaN, inf, signed zeros) are part of the contract.
    compile_args = ["-O3"] + (["-O0", "-g"] if debug else [])

extensions = [
    Extension(
        "wengert._tape",
        ["src/wengert/_tape.pyx"],
        extra_compile_args=compile_args,
    ),
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            include_path=["src"]))
