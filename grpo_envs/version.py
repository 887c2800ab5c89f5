"""The installed distribution's version: pyproject.toml is its one source (both packages report it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("grpo-gym")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
