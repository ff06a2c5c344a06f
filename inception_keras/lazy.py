"""Public names of a package imported on first use (PEP 562), so that importing the package - or
its TensorFlow-free configuration modules, for the command line's ``--help`` - does not import
TensorFlow.

A package lists ``{name: submodule}`` and gets a module ``__getattr__`` and ``__dir__``::

    __getattr__, __dir__ = lazy.exports(__name__, {"GoogLeNet": "model", "fit": "training"})

``package.GoogLeNet`` and ``from package import GoogLeNet`` import ``package.model`` then (once:
the value is stored on the package). ``package.some_submodule`` imports that submodule, as the
attribute of an eagerly imported package would have been there.

Written here rather than taken from ``lazy_loader`` (scientific-python): the dozen lines below are
all that is needed, and a dependency for them is not.
"""

import importlib
import importlib.util
import sys


def exports(package, names):
    """``(__getattr__, __dir__)`` for the module ``package``, whose public ``names`` map to the
    submodule (relative to ``package``) each is imported from."""

    def __getattr__(name):
        module = sys.modules[package]
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)  # later lookups find it without this function
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
