"""mlobs: ML observability in one service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlobs")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"
