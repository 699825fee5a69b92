"""Build hook (the metadata is in pyproject.toml): the wheel leaves out the tests that sit
beside the code (`*_test.py`, `conftest.py`); package data is listed in pyproject.toml."""

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithoutTests(build_py):
    """build_py that skips test modules."""

    def find_package_modules(self, package, package_dir):
        return [(pkg, module, path)
                for pkg, module, path in super().find_package_modules(package, package_dir)
                if not (module.endswith("_test") or module == "conftest")]


setup(cmdclass={"build_py": BuildPyWithoutTests})
