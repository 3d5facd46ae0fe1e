"""Build the optional C eval-callback filter (playground/native/evalfilter.c); everything else is in
pyproject.toml. ``optional=True``: without a C compiler the install still succeeds and the backend falls
back to a pure-Python callback (slower per token, same results)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("playground._evalfilter", ["playground/native/evalfilter.c"], optional=True)])
