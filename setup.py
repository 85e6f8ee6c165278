"""palmid's one native extension, the 1:N index's Hamming kernels (everything else is in pyproject.toml).

No -march flags: the AVX-512 code is compiled with per-function target attributes and chosen at run time, so the
same build runs on any x86-64 or other CPU (see src/palmid/index/kernels.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "palmid.index._kernels",
            sources=["src/palmid/index/_kernels.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
        )
    ]
)
