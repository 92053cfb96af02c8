"""The package list, for setuptools; everything else is in pyproject.toml.

moldesign and every subpackage (a folder under moldesign/ with an __init__.py), plus
moldesign._models: the top-level models/ folder, mapped by [tool.setuptools.package-dir] in
pyproject.toml, whose package-data puts the shipped model into the wheel. models/ stays the source
of truth. pyproject.toml's [tool.setuptools.packages.find] only finds packages under their own
folder, so it cannot add that one. tests/packaging/test_wheel.py checks the wheel."""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["moldesign", "moldesign.*"]), "moldesign._models"])
