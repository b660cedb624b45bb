# The metadata lives in setup.cfg; this shim lets stdeb and older tooling run setup.py.
from setuptools import setup

setup()
