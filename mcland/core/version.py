"""The installed package's version, in one place that every module can import at the top
(``mcland/__init__.py`` re-exports it as ``mcland.__version__``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mcland")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
