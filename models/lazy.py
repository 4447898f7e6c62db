"""Package names that load on first use (PEP 562), so importing a package does not import all of it.

``imgsonic --help`` and ``from models.errors import ...`` must not wait for torch; a package ``__init__``
lists what it exports and where each name lives, and the module is imported when the name is first read.

Example
-------
>>> __getattr__, __dir__ = lazy_exports("models", {"ParameterError": "models.errors"})
>>> __getattr__("ParameterError").__name__
'ParameterError'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``exports`` (name → the module that defines it)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
